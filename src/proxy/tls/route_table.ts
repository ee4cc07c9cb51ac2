/**
 * Server-name routing for TLS passthrough listeners: which route a ClientHello's server
 * name selects. Pure: built once per route set, looked up per connection.
 *
 * Host patterns:
 * - `api.example.com`: exactly that name.
 * - `*.example.com`: exactly one label before `example.com` (`a.example.com`, not
 *   `a.b.example.com`, not `example.com`), as in certificates (RFC 6125 §6.4.3) and the
 *   original NautilusLB.
 * - `**.example.com`: one or more labels before `example.com`, at any depth (Gateway API's
 *   meaning of `*.example.com`); not `example.com` itself.
 *
 * Precedence: an exact name beats every wildcard; among wildcards the longer suffix wins;
 * at equal suffix `*.` beats `**.`. Names and patterns are compared lower-cased with one
 * trailing dot dropped.
 *
 * @module
 */
import { normalizeServerName } from "../../core/tls_spec.ts";

/** The kinds of host pattern, see the module doc. */
export type HostPatternKind = "exact" | "one_label" | "any_depth";

/** A host pattern split into its kind and the name or suffix it matches. */
export interface HostPattern {
  readonly kind: HostPatternKind;
  /** The exact name, or the suffix after `*.` / `**.`; lower-case, no trailing dot. */
  readonly name: string;
}

/** A route's name and host patterns, as {@linkcode RouteTable} takes them. */
export interface HostRoute {
  /** Route name, unique in the listener. */
  readonly name: string;
  /** Host patterns as written in config. */
  readonly hosts: readonly string[];
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

export { normalizeServerName };

/**
 * Parses a host pattern as written in config.
 * @throws {SyntaxError} with a message naming what is wrong, e.g.
 *   `Cannot parse host pattern "a.*.com": '*' is allowed only as the first label`
 */
export function parseHostPattern(text: string): HostPattern {
  const fail = (detail: string): never => {
    throw new SyntaxError(`Cannot parse host pattern ${JSON.stringify(text)}: ${detail}`);
  };
  const lower = text.trim().toLowerCase();
  let kind: HostPatternKind = "exact";
  let name = normalizeServerName(lower);
  if (lower.startsWith("**.")) {
    kind = "any_depth";
    name = normalizeServerName(lower.slice(3));
  } else if (lower.startsWith("*.")) {
    kind = "one_label";
    name = normalizeServerName(lower.slice(2));
  }
  if (name === "") fail(kind === "exact" ? "it is empty" : "a wildcard needs a suffix");
  if (name.length > 253) fail(`it is ${name.length} characters long, over 253`);
  for (const label of name.split(".")) {
    if (label.includes("*")) fail("'*' is allowed only as the whole first label");
    if (!LABEL.test(label)) {
      fail(
        label === ""
          ? "it has an empty label"
          : `label ${JSON.stringify(label)} is not letters, digits, '-' and '_' (at most 63)`,
      );
    }
  }
  return { kind, name };
}

/** The canonical spelling of a pattern, for duplicate checks and messages. */
export function formatHostPattern(pattern: HostPattern): string {
  return pattern.kind === "exact"
    ? pattern.name
    : `${pattern.kind === "one_label" ? "*." : "**."}${pattern.name}`;
}

/**
 * Host patterns of several routes, compiled for lookup. A lookup costs one map probe per
 * label of the name.
 */
export class RouteTable<R extends HostRoute = HostRoute> {
  readonly #exact = new Map<string, R>();
  readonly #oneLabel = new Map<string, R>();
  readonly #anyDepth = new Map<string, R>();

  /**
   * Compiles the routes' patterns. Where two routes list the same pattern the first keeps
   * it (config rejects that case before).
   * @throws {SyntaxError} on a pattern {@linkcode parseHostPattern} rejects
   */
  constructor(routes: readonly R[]) {
    for (const route of routes) {
      for (const text of route.hosts) {
        const { kind, name } = parseHostPattern(text);
        const map = kind === "exact"
          ? this.#exact
          : kind === "one_label"
          ? this.#oneLabel
          : this.#anyDepth;
        if (!map.has(name)) map.set(name, route);
      }
    }
  }

  /**
   * The route a server name selects, or `undefined` when no pattern matches.
   * @param serverName as sent by the client; compared lower-cased without a trailing dot
   */
  match(serverName: string): R | undefined {
    const name = normalizeServerName(serverName);
    const exact = this.#exact.get(name);
    if (exact !== undefined) return exact;
    // Suffixes from longest to shortest: the first that a pattern covers wins.
    let dot = name.indexOf(".");
    let isFirst = true;
    while (dot >= 0) {
      const suffix = name.slice(dot + 1);
      if (suffix === "") return undefined;
      if (isFirst && dot > 0) {
        const one = this.#oneLabel.get(suffix);
        if (one !== undefined) return one;
      }
      const any = this.#anyDepth.get(suffix);
      if (any !== undefined && dot > 0) return any;
      isFirst = false;
      dot = name.indexOf(".", dot + 1);
    }
    return undefined;
  }
}
