/**
 * Cross-field checks of a listener's `protocol` and `tls` block: a `tls` listener has routes
 * and each route has backends; route names and host patterns are unique; `defaultRoute`
 * names a route. They read the raw data defensively, as `_cross_checks.ts` does.
 *
 * @module
 */
import { suggest } from "../core/suggest.ts";
import { formatHostPattern, parseHostPattern } from "../proxy/mod.ts";
import { type ConfigIssue, formatPath } from "./issue.ts";
import type { Locator } from "./_locate.ts";
import { key } from "./_messages.ts";
import { isRawMap, type Path, type RawMap } from "./_raw.ts";

/** Whether the listener's backends are checked by {@linkcode tlsChecks} (per route) instead. */
export function isTlsListener(item: RawMap): boolean {
  return item.protocol === "tls";
}

/** Every problem of one listener's `protocol`/`tls` combination, in the order found. */
export function tlsChecks(item: RawMap, here: Path, at: Locator): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const tls = item.tls;
  if (item.protocol !== "tls") {
    if (tls !== undefined) {
      issues.push(
        at.issue(
          [...here, "tls"],
          `${key("tls")} applies only to ${key("protocol")} "tls": set it, or remove this block`,
        ),
      );
    }
    return issues;
  }
  if (!isRawMap(tls)) {
    if (tls === undefined) {
      issues.push(
        at.issue(
          [...here, "protocol"],
          `${key("protocol")} "tls" needs a ${key("tls")} block with ${key("routes")}`,
        ),
      );
    }
    return issues;
  }
  if (
    item.backends !== undefined && !(Array.isArray(item.backends) && item.backends.length === 0)
  ) {
    issues.push(
      at.issue(
        [...here, "backends"],
        `a tls listener routes to its routes' pools: move static backends under ${
          key("tls.routes[].backends")
        }`,
      ),
    );
  }
  const routes = Array.isArray(tls.routes) ? tls.routes : [];
  const names = new Map<string, number>();
  const hosts = new Map<string, Path>();
  const hasListenerPortName = item.backendPortName !== undefined;
  routes.forEach((route: unknown, r) => {
    if (!isRawMap(route)) return;
    const at_ = [...here, "tls", "routes", r];
    if (typeof route.name === "string" && route.name !== "") {
      const first = names.get(route.name);
      if (first === undefined) names.set(route.name, r);
      else {
        issues.push(
          at.issue(
            [...at_, "name"],
            `duplicate route name ${JSON.stringify(route.name)}: already used by ${
              formatPath([...here, "tls", "routes", first])
            }`,
          ),
        );
      }
    }
    const hasBackends = Array.isArray(route.backends) && route.backends.length > 0;
    if (route.backendPortName === undefined && !hasBackends && !hasListenerPortName) {
      issues.push(
        at.issue(
          at_,
          `a route needs ${key("backendPortName")} (its own or the listener's) or a non-empty ${
            key("backends")
          } list`,
        ),
      );
    }
    const list = Array.isArray(route.hosts) ? route.hosts : [];
    if (list.length === 0 && route.name !== tls.defaultRoute) {
      issues.push(
        at.issue(
          at_,
          `a route needs ${key("hosts")} unless it is the listener's ${key("defaultRoute")}`,
        ),
      );
    }
    list.forEach((text: unknown, h) => {
      if (typeof text !== "string") return;
      let canonical: string;
      try {
        canonical = formatHostPattern(parseHostPattern(text));
      } catch {
        return; // the schema reports it
      }
      const path = [...at_, "hosts", h];
      const first = hosts.get(canonical);
      if (first === undefined) hosts.set(canonical, path);
      else {
        issues.push(
          at.issue(
            path,
            `duplicate host ${JSON.stringify(canonical)}: already routed by ${formatPath(first)}`,
          ),
        );
      }
    });
  });
  if (typeof tls.defaultRoute === "string" && !names.has(tls.defaultRoute)) {
    const hint = suggest(tls.defaultRoute, [...names.keys()]);
    issues.push(
      at.issue(
        [...here, "tls", "defaultRoute"],
        `no route is named ${JSON.stringify(tls.defaultRoute)}` +
          (hint === undefined ? "" : `: did you mean ${JSON.stringify(hint)}?`),
      ),
    );
  }
  return issues;
}
