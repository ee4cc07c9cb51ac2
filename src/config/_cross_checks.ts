/**
 * Checks across values: duplicate listener names and backends, listen and admin address
 * conflicts (per transport: a `udp` listener may share a `tcp` listener's address),
 * `udp` settings on a listener that is not `protocol: udp`, listeners without backends, a `service` outside the listener's `namespace`,
 * `acceptProxyProtocol` without `trustedProxies`. They read the raw data defensively, so they
 * run (and report) even where other parts of the document are invalid.
 *
 * @module
 */
import { formatHostPort, parseHostPort } from "../core/address.ts";
import { DEFAULT_ADMIN_ADDRESS } from "./defaults.ts";
import { type ConfigIssue, formatPath } from "./issue.ts";
import { type Bound, boundAddress, BoundAddresses, overlaps } from "./_address_conflicts.ts";
import type { Locator } from "./_locate.ts";
import { key } from "./_messages.ts";
import { isRawMap, type Path } from "./_raw.ts";
import { checkAddress, checkDns1123Label } from "./schema.ts";
import { isTlsListener, tlsChecks } from "./_tls_checks.ts";

/**
 * Every cross-field problem of the raw document `data`, in the order found. Never throws:
 * values of the wrong type are skipped (the schema reports them).
 */
export function crossChecks(data: unknown, at: Locator): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!isRawMap(data)) return issues;
  const listeners = Array.isArray(data.configurations) ? data.configurations : [];
  const names = new Map<string, number>();
  const bound = new BoundAddresses();
  const boundUdp = new BoundAddresses();

  listeners.forEach((item: unknown, i) => {
    if (!isRawMap(item)) return;
    const here: Path = ["configurations", i];

    if (typeof item.name === "string" && item.name !== "") {
      const first = names.get(item.name);
      if (first === undefined) names.set(item.name, i);
      else {
        issues.push(
          at.issue(
            [...here, "name"],
            `duplicate listener name ${JSON.stringify(item.name)}: already used by ${
              formatPath(["configurations", first])
            }`,
          ),
        );
      }
    }

    const isUdp = item.protocol === "udp";
    const address = boundAddress([...here, "listenerAddress"], item.listenerAddress);
    if (address !== undefined) {
      const sameTransport = isUdp ? boundUdp : bound;
      const other = sameTransport.firstOverlap(address);
      if (other !== undefined) issues.push(conflict(address, other, at));
      sameTransport.add(address);
    }
    if (isUdp) {
      for (const name of ["proxyProtocol", "acceptProxyProtocol"] as const) {
        const value = item[name];
        if (value === undefined || value === false || value === "off") continue;
        issues.push(
          at.issue(
            [...here, name],
            `${key(name)} is not supported with ${
              key("protocol")
            } "udp": PROXY headers are sent and read on TCP connections only`,
          ),
        );
      }
    }
    const check = isRawMap(item.healthCheck) ? item.healthCheck : {};
    if (check.dnsQuery !== undefined && check.type === "http") {
      issues.push(
        at.issue(
          [...here, "healthCheck", "dnsQuery"],
          `${key("dnsQuery")} is a check of its own: it cannot go with ${key("type")} "http"`,
        ),
      );
    }
    if (item.udp !== undefined && !isUdp) {
      issues.push(
        at.issue(
          [...here, "udp"],
          `${key("udp")} settings need ${key("protocol")} "udp": this listener is ${
            JSON.stringify(typeof item.protocol === "string" ? item.protocol : "tcp")
          }`,
        ),
      );
    }

    const hasPortName = item.backendPortName !== undefined;
    const hasBackends = item.backends !== undefined &&
      !(Array.isArray(item.backends) && item.backends.length === 0);
    issues.push(...tlsChecks(item, here, at));
    if (!hasPortName && !hasBackends && !isTlsListener(item)) {
      issues.push(
        at.issue(
          here,
          `a listener needs ${key("backendPortName")} or a non-empty ${key("backends")} list`,
        ),
      );
    }

    if (
      typeof item.service === "string" && typeof item.namespace === "string" &&
      checkDns1123Label(item.namespace) === undefined
    ) {
      const serviceNamespace = item.service.split("/")[0]!;
      if (
        item.service.includes("/") && checkDns1123Label(serviceNamespace) === undefined &&
        serviceNamespace !== item.namespace
      ) {
        issues.push(
          at.issue(
            [...here, "service"],
            `service ${JSON.stringify(item.service)} is outside namespace ${
              JSON.stringify(item.namespace)
            }`,
          ),
        );
      }
    }

    issues.push(...namespaceIssues(here, item, at));

    if (Array.isArray(item.backends)) issues.push(...duplicateBackends(here, item.backends, at));

    if (item.acceptProxyProtocol === true) {
      const trusted = item.trustedProxies;
      if (trusted === undefined || (Array.isArray(trusted) && trusted.length === 0)) {
        issues.push(
          at.issue(
            trusted === undefined ? [...here, "acceptProxyProtocol"] : [...here, "trustedProxies"],
            `${key("acceptProxyProtocol")} needs a non-empty ${
              key("trustedProxies")
            } list: only those peers may state a client address`,
          ),
        );
      }
    }
  });

  const settings = isRawMap(data.settings) ? data.settings : {};
  if (settings.adminAddress === undefined) {
    const admin = boundAddress(["settings", "adminAddress"], DEFAULT_ADMIN_ADDRESS)!;
    for (const listener of bound.all) {
      if (overlaps(listener, admin)) {
        issues.push(
          at.issue(
            listener.path,
            `address ${JSON.stringify(listener.text)} conflicts with the default ${
              formatPath(admin.path)
            } ${JSON.stringify(admin.text)}: set another one, or "" to disable it`,
          ),
        );
      }
    }
  } else {
    const admin = boundAddress(["settings", "adminAddress"], settings.adminAddress);
    const other = admin && bound.firstOverlap(admin);
    if (admin !== undefined && other !== undefined) issues.push(conflict(admin, other, at));
  }
  return issues;
}

/**
 * `namespace` beside `namespaces`, `"*"` beside names, and a `service` whose namespace is
 * outside `namespaces`.
 */
function namespaceIssues(here: Path, item: Record<string, unknown>, at: Locator): ConfigIssue[] {
  const list = item.namespaces;
  if (!Array.isArray(list)) return [];
  const issues: ConfigIssue[] = [];
  if (item.namespace !== undefined) {
    issues.push(
      at.issue(
        [...here, "namespace"],
        `${key("namespace")} and ${key("namespaces")} cannot both be set: list it in ${
          key("namespaces")
        }`,
      ),
    );
  }
  if (list.includes("*") && list.length > 1) {
    issues.push(
      at.issue(
        [...here, "namespaces"],
        `"*" already means every namespace: drop the other entries or the "*"`,
      ),
    );
  }
  const service = item.service;
  if (typeof service === "string" && service.includes("/") && !list.includes("*")) {
    const ns = service.split("/")[0]!;
    if (
      checkDns1123Label(ns) === undefined && list.every((n) => typeof n === "string") &&
      !list.includes(ns)
    ) {
      issues.push(
        at.issue(
          [...here, "service"],
          `service ${JSON.stringify(service)} is outside namespaces ${JSON.stringify(list)}`,
        ),
      );
    }
  }
  return issues;
}

function conflict(address: Bound, other: Bound, at: Locator): ConfigIssue {
  return at.issue(
    address.path,
    `address ${JSON.stringify(address.text)} conflicts with ${formatPath(other.path)} ${
      JSON.stringify(other.text)
    }`,
  );
}

function duplicateBackends(here: Path, backends: unknown[], at: Locator): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Map<string, number>();
  backends.forEach((entry, j) => {
    const text = isRawMap(entry) ? entry.address : entry;
    if (typeof text !== "string" || checkAddress(text, { isHostRequired: true }) !== undefined) {
      return;
    }
    const { host, port } = parseHostPort(text);
    const normal = formatHostPort(host.toLowerCase(), port);
    const first = seen.get(normal);
    if (first === undefined) seen.set(normal, j);
    else {
      issues.push(
        at.issue(
          [...here, "backends", j],
          `duplicate backend ${JSON.stringify(normal)}: already listed as ${
            formatPath(["backends", first])
          }`,
        ),
      );
    }
  });
  return issues;
}
