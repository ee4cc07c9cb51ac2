/**
 * YAML text to a validated, defaulted, frozen {@linkcode Config}, reporting every problem at
 * once with its line and column.
 *
 * Stages: YAML syntax (the `yaml` package, with a `LineCounter` for positions), the zod schema
 * (types, ranges, formats, unknown keys), then checks across values (duplicate names, address
 * conflicts, listeners without backends). Each stage runs even when an earlier one found
 * problems, except that schema checks are skipped when the YAML itself is broken, since its
 * shape is then a guess.
 *
 * @module
 */
import { type Document, LineCounter, parseDocument, type YAMLError } from "yaml";
import { z } from "zod";
import { formatHostPort, parseHostPort } from "../core/address.ts";
import { formatDurationMs } from "../core/duration.ts";
import type { Config, ListenerConfig } from "./types.ts";
import type { ConfigIssue } from "./issue.ts";
import { formatPath } from "./issue.ts";
import { Locator } from "./_locate.ts";
import { indexTree, toData } from "./_tree.ts";
import { describeType, describeValue, key, listValues } from "./_messages.ts";
import { suggest } from "../core/suggest.ts";
import {
  checkAddress,
  checkDns1123Label,
  configSchema,
  type ConfigSchemaOutput,
} from "./schema.ts";
import { DEFAULT_ADMIN_ADDRESS } from "./defaults.ts";

/** Outcome of {@linkcode parseConfig}. Issues and warnings are in document order. */
export type ParseResult =
  | {
    readonly ok: true;
    readonly config: Config;
    /** Legal but probably unintended settings, e.g. `connectTimeout` above `requestTimeout`. */
    readonly warnings: readonly ConfigIssue[];
  }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

type Path = readonly PropertyKey[];
type RawMap = Record<string, unknown>;

/**
 * Parses and validates a config file's text. Never throws for bad input: every problem comes
 * back as an issue.
 *
 * @param text the YAML source
 * @param file the name to put in issues, as the user wrote it (e.g. `config.yaml`)
 */
export function parseConfig(text: string, file: string): ParseResult {
  const lines = new LineCounter();
  let doc: Document;
  try {
    // Duplicate keys are found by `indexTree`: the package's own check is quadratic.
    doc = parseDocument(text, {
      lineCounter: lines,
      prettyErrors: false,
      uniqueKeys: false,
    });
  } catch (error) {
    // Only pathological input gets here (e.g. nesting deep enough to exhaust the stack).
    const at = new Locator(parseDocument(""), lines, file);
    return fail([at.issueAtOffset(0, `invalid YAML: ${sentence(errorMessage(error))}`)]);
  }
  const tree = indexTree(doc);
  const at = new Locator(doc, lines, file, tree.aliases);
  const issues: ConfigIssue[] = doc.errors.map((error) => yamlIssue(error, at));
  for (const problem of tree.problems) {
    issues.push(at.issueAtOffset(problem.offset, problem.message));
  }
  // Duplicate keys leave a well-formed document (the last one wins); keep checking then.
  const isShapeKnown = doc.errors.length === 0 && tree.problems.every((p) => p.isShapeKnown);
  if (!isShapeKnown) return fail(issues);

  const data = withoutNulls(toData(doc, tree));
  if (data === null || data === undefined) {
    issues.push(
      at.issueAtOffset(0, `the file has no content: expected a map with ${key("configurations")}`),
    );
    return fail(issues);
  }

  const result = configSchema.safeParse(data, { error: fallbackMessage, reportInput: true });
  if (!result.success) {
    for (const issue of result.error.issues) issues.push(...schemaIssues(issue, [], at));
  }
  issues.push(...crossChecks(data, at));
  if (issues.length > 0 || !result.success) return fail(issues);

  const config = deepFreeze(buildConfig(result.data));
  return { ok: true, config, warnings: sortIssues(warningsOf(config, at)) };
}

function fail(issues: ConfigIssue[]): ParseResult {
  return { ok: false, issues: sortIssues(unique(issues)) };
}

/**
 * Drops repeats of an issue (same place, same message). A value can fail two checks that word
 * their failure the same way, e.g. `1e308` is both not a safe integer and out of range.
 */
function unique(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const id = `${issue.line}:${issue.column}:${issue.path}:${issue.message}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Document order; stable, so problems at one spot keep the order they were found in. */
function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => a.issue.line - b.issue.line || a.issue.column - b.issue.column || a.i - b.i)
    .map(({ issue }) => issue);
}

// ---------------------------------------------------------------------------------------
// YAML stage

function yamlIssue(error: YAMLError, at: Locator): ConfigIssue {
  const [start] = error.pos;
  if (error.code === "MULTIPLE_DOCS") {
    return at.issueAtOffset(
      start,
      "invalid YAML: expected one document, found more: remove the extra `---`",
    );
  }
  return at.issueAtOffset(start, `invalid YAML: ${sentence(error.message)}`);
}

/** Lower-cases the first letter (unless it starts an acronym) and drops a final period. */
function sentence(message: string): string {
  const text = message.trim().replace(/\.$/, "");
  return /^[A-Z][a-z]/.test(text) ? text[0]!.toLowerCase() + text.slice(1) : text;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Drops map entries written without a value (`key:`), so they read as absent. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (isRawMap(value)) {
    const out: RawMap = {};
    for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = withoutNulls(v);
    return out;
  }
  return value;
}

function isRawMap(value: unknown): value is RawMap {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------
// Schema stage

/** Messages for issues the schema does not word itself. */
function fallbackMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      return `expected ${describeType(issue.expected)}, got ${describeValue(issue.input)}`;
    case "invalid_value":
      return `expected one of ${listValues(issue.values.map(String))}, got ${
        describeValue(issue.input)
      }`;
    case "too_small":
      return issue.origin === "array"
        ? `expected at least ${issue.minimum} item(s)`
        : `must be at least ${issue.minimum}, got ${describeValue(issue.input)}`;
    case "too_big":
      return issue.origin === "array"
        ? `expected at most ${issue.maximum} item(s)`
        : `must be at most ${issue.maximum}, got ${describeValue(issue.input)}`;
    default:
      return undefined;
  }
}

function schemaIssues(issue: z.core.$ZodIssue, base: Path, at: Locator): ConfigIssue[] {
  const path = [...base, ...issue.path];
  switch (issue.code) {
    case "invalid_union": {
      // A union branch that failed only because the value has another type is noise; if
      // exactly one branch got further, its problems are the real ones.
      const further = issue.errors.filter((branch) =>
        !branch.every((i) => i.code === "invalid_type" && i.path.length === 0)
      );
      if (further.length === 1) return further[0]!.flatMap((i) => schemaIssues(i, path, at));
      return [at.issue(path, issue.message)];
    }
    case "unrecognized_keys":
      return issue.keys.map((k) => at.issue([...path, k], unknownKeyMessage(path, k), "key"));
    case "invalid_type": {
      if (issue.input !== undefined || path.length === 0) return [at.issue(path, issue.message)];
      const name = String(path[path.length - 1]);
      if (at.has(path)) return [at.issue(path, `missing value for ${key(name)}`, "key")];
      return [at.issue(path.slice(0, -1), `missing required key ${key(name)}`)];
    }
    case "custom":
      return [at.issue(path, issue.message, issue.params?.target === "key" ? "key" : "value")];
    default:
      return [at.issue(path, issue.message)];
  }
}

/** Keys of the schema's object at `path` (indices and map keys match any element). */
function keysAt(schema: z.ZodType, path: Path): readonly string[] | undefined {
  let s: z.ZodType = schema;
  for (;;) {
    if (
      s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodPrefault ||
      s instanceof z.ZodNullable
    ) s = s.unwrap() as z.ZodType;
    else if (s instanceof z.ZodPipe) s = s.in as z.ZodType;
    else break;
  }
  if (s instanceof z.ZodUnion) {
    for (const option of s.options) {
      const keys = keysAt(option as z.ZodType, path);
      if (keys !== undefined) return keys;
    }
    return undefined;
  }
  const [head, ...rest] = path;
  if (head === undefined) return s instanceof z.ZodObject ? Object.keys(s.shape) : undefined;
  if (s instanceof z.ZodObject) {
    const field = s.shape[String(head)];
    return field === undefined ? undefined : keysAt(field as z.ZodType, rest);
  }
  if (s instanceof z.ZodArray) return keysAt(s.element as z.ZodType, rest);
  if (s instanceof z.ZodRecord) return keysAt(s.valueType as z.ZodType, rest);
  return undefined;
}

/** Sections a misplaced key may belong to, for "it belongs under `settings`". */
const SECTIONS: readonly { readonly path: Path; readonly where: string }[] = [
  { path: ["settings"], where: `under ${key("settings")}` },
  { path: ["configurations", 0], where: `in a listener under ${key("configurations")}` },
  { path: ["configurations", 0, "healthCheck"], where: `under ${key("healthCheck")}` },
  { path: ["configurations", 0, "maglev"], where: `under ${key("maglev")}` },
];
/** Keys too generic to guess a section from. */
const AMBIGUOUS_KEYS: ReadonlySet<string> = new Set(["port", "timeout", "enabled", "address"]);

function unknownKeyMessage(objectPath: Path, name: string): string {
  const known = keysAt(configSchema, objectPath) ?? [];
  const close = suggest(name, plausible(name, known));
  if (close !== undefined) return `unknown key ${key(name)}: did you mean ${key(close)}?`;
  if (!AMBIGUOUS_KEYS.has(name)) {
    const here = formatPath(objectPath.map((s) => (typeof s === "number" ? 0 : s)));
    for (const section of SECTIONS) {
      if (formatPath(section.path) === here) continue;
      if (keysAt(configSchema, section.path)?.includes(name)) {
        return `unknown key ${key(name)}: it belongs ${section.where}`;
      }
    }
  }
  return `unknown key ${key(name)}`;
}

/** Lower case without `_`, `-` and spaces, as `suggest` compares words. */
function fold(word: string): string {
  return word.toLowerCase().replace(/[-_\s]/g, "");
}

/**
 * The candidates `suggest` could possibly pick for `word`: those it would accept as a prefix
 * match, and those whose letters differ from the word's by no more than the third of their
 * length that `suggest` allows. Edit distance costs the product of the lengths, so with
 * thousands of unknown keys checking every candidate dominated validation; the letter count
 * is a lower bound of it (an edit changes at most two counts by one each, a transposition
 * none) that costs the sum of the lengths.
 */
function plausible(word: string, candidates: readonly string[]): string[] {
  const folded = fold(word);
  return candidates.filter((candidate) => {
    const other = fold(candidate);
    if (folded.length >= 3 && other.startsWith(folded)) return true;
    const limit = Math.max(1, Math.floor(Math.max(folded.length, other.length) / 3));
    if (Math.abs(folded.length - other.length) > limit) return false;
    return letterDistance(folded, other) <= limit;
  });
}

/** Lower bound of the edit distance: the letters one word has more of than the other. */
function letterDistance(a: string, b: string): number {
  const counts = new Map<string, number>();
  for (const c of a) counts.set(c, (counts.get(c) ?? 0) + 1);
  for (const c of b) counts.set(c, (counts.get(c) ?? 0) - 1);
  let more = 0;
  let fewer = 0;
  for (const n of counts.values()) {
    if (n > 0) more += n;
    else fewer -= n;
  }
  return Math.max(more, fewer);
}

// ---------------------------------------------------------------------------------------
// Checks across values. They read the raw data defensively, so they run (and report) even
// where other parts of the document are invalid.

interface Bound {
  readonly path: Path;
  readonly text: string;
  readonly host: string;
  readonly port: number;
}

function boundAddress(path: Path, value: unknown): Bound | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  if (checkAddress(value, { isHostRequired: false }) !== undefined) return undefined;
  const { host, port } = parseHostPort(value);
  return { path, text: value, host: host.toLowerCase(), port };
}

function isAnyV6(host: string): boolean {
  return host === "" || (host.includes(":") && /^[0:]+$/.test(host));
}

/**
 * Whether two listen addresses cannot both be bound. `""` and `::` take every address of the
 * port (dual-stack sockets); `0.0.0.0` every IPv4 address; host names may resolve to anything.
 */
function overlaps(a: Bound, b: Bound): boolean {
  if (a.port !== b.port) return false;
  if (a.host === b.host || isAnyV6(a.host) || isAnyV6(b.host)) return true;
  return (a.host === "0.0.0.0" && !isV6(b.host)) || (b.host === "0.0.0.0" && !isV6(a.host));
}

const isV6 = (host: string) => host.includes(":");

interface PortBounds {
  /** In the order added, for messages; the earliest is reported first. */
  readonly first: Bound;
  firstAnyV6?: Bound;
  firstAnyV4?: Bound;
  firstV4?: Bound;
  readonly byHost: Map<string, Bound>;
}

/**
 * Listen addresses seen so far, indexed so that finding the first one a new address overlaps
 * with (see {@linkcode overlaps}) costs a few look-ups instead of a scan of all listeners.
 */
class BoundAddresses {
  readonly all: Bound[] = [];
  readonly #order = new Map<Bound, number>();
  readonly #byPort = new Map<number, PortBounds>();

  add(address: Bound): void {
    this.#order.set(address, this.all.length);
    this.all.push(address);
    let port = this.#byPort.get(address.port);
    if (port === undefined) {
      port = { first: address, byHost: new Map() };
      this.#byPort.set(address.port, port);
    }
    if (!port.byHost.has(address.host)) port.byHost.set(address.host, address);
    if (isAnyV6(address.host)) port.firstAnyV6 ??= address;
    if (address.host === "0.0.0.0") port.firstAnyV4 ??= address;
    if (!isV6(address.host)) port.firstV4 ??= address;
  }

  /** The earliest address added that cannot be bound beside `address`. */
  firstOverlap(address: Bound): Bound | undefined {
    const port = this.#byPort.get(address.port);
    if (port === undefined) return undefined;
    const candidates = [port.byHost.get(address.host), port.firstAnyV6];
    if (isAnyV6(address.host)) candidates.push(port.first);
    if (address.host === "0.0.0.0") candidates.push(port.firstV4);
    if (!isV6(address.host)) candidates.push(port.firstAnyV4);
    let earliest: Bound | undefined;
    for (const c of candidates) {
      if (c === undefined) continue;
      if (earliest === undefined || this.#order.get(c)! < this.#order.get(earliest)!) {
        earliest = c;
      }
    }
    return earliest;
  }
}

function crossChecks(data: unknown, at: Locator): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!isRawMap(data)) return issues;
  const listeners = Array.isArray(data.configurations) ? data.configurations : [];
  const names = new Map<string, number>();
  const bound = new BoundAddresses();

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

    const address = boundAddress([...here, "listenerAddress"], item.listenerAddress);
    if (address !== undefined) {
      const other = bound.firstOverlap(address);
      if (other !== undefined) issues.push(conflict(address, other, at));
      bound.add(address);
    }

    const hasPortName = item.backendPortName !== undefined;
    const hasBackends = item.backends !== undefined &&
      !(Array.isArray(item.backends) && item.backends.length === 0);
    if (!hasPortName && !hasBackends) {
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

// ---------------------------------------------------------------------------------------
// Result

function buildConfig(data: ConfigSchemaOutput): Config {
  return {
    settings: {
      kubeconfigPath: data.settings.kubeconfigPath,
      logLevel: data.settings.logLevel,
      logFormat: data.settings.logFormat,
      accessLog: data.settings.accessLog,
      adminAddress: data.settings.adminAddress,
      shutdownDelayMs: data.settings.shutdownDelay,
      workers: data.settings.workers,
    },
    configurations: data.configurations.map((l): ListenerConfig => {
      const { host, port } = parseHostPort(l.listenerAddress);
      const hc = l.healthCheck;
      return {
        name: l.name,
        listenerAddress: l.listenerAddress,
        host,
        port,
        ...(l.backendPortName === undefined ? {} : { backendPortName: l.backendPortName }),
        ...(l.namespace === undefined ? {} : { namespace: l.namespace }),
        ...(l.service === undefined ? {} : { service: l.service }),
        ...(l.serviceSelector === undefined ? {} : { serviceSelector: { ...l.serviceSelector } }),
        backendMode: l.backendMode,
        nodeAddressTypes: [...l.nodeAddressTypes],
        excludeCordonedNodes: l.excludeCordonedNodes,
        backends: l.backends,
        balancer: l.balancer,
        maglevTableSize: l.maglev.tableSize,
        maglevSeed: l.maglev.seed,
        requestTimeoutMs: l.requestTimeout,
        connectTimeoutMs: l.connectTimeout,
        idleTimeoutMs: l.idleTimeout,
        maxConnections: l.maxConnections,
        maxConnectAttempts: l.maxConnectAttempts,
        maxConnectionsPerBackend: l.maxConnectionsPerBackend,
        accessLog: l.accessLog ?? data.settings.accessLog,
        drainTimeoutMs: l.drainTimeout,
        onRemoval: l.onRemoval,
        whenAllUnhealthy: l.whenAllUnhealthy,
        ...(l.proxyProtocol === "off" ? {} : { proxyProtocol: l.proxyProtocol }),
        acceptProxyProtocol: l.acceptProxyProtocol,
        trustedProxies: l.acceptProxyProtocol ? [...(l.trustedProxies ?? [])] : [],
        proxyHeaderTimeoutMs: l.proxyHeaderTimeout,
        healthCheck: {
          enabled: hc.enabled,
          intervalMs: hc.interval,
          timeoutMs: hc.timeout,
          rise: hc.rise,
          fall: hc.fall,
          ...(hc.port === undefined ? {} : { port: hc.port }),
          ...(hc.send === undefined ? {} : { send: hc.send }),
          ...(hc.expect === undefined ? {} : { expect: hc.expect }),
          maxEjectionPercent: hc.maxEjectionPercent,
          ...(hc.tls ? { tls: true } : {}),
        },
      };
    }),
  };
}

function warningsOf(config: Config, at: Locator): ConfigIssue[] {
  const warnings: ConfigIssue[] = [];
  config.configurations.forEach((l, i) => {
    const here: Path = ["configurations", i];
    if (l.connectTimeoutMs > l.requestTimeoutMs) {
      const path = at.has([...here, "connectTimeout"])
        ? [...here, "connectTimeout"]
        : [...here, "requestTimeout"];
      warnings.push(
        at.issue(
          path,
          `connectTimeout ${formatDurationMs(l.connectTimeoutMs)} is longer than requestTimeout ${
            formatDurationMs(l.requestTimeoutMs)
          }: connect attempts end when requestTimeout runs out`,
        ),
      );
    }
    const hc = l.healthCheck;
    if (hc.enabled && hc.timeoutMs > hc.intervalMs) {
      warnings.push(
        at.issue(
          [...here, "healthCheck", "timeout"],
          `timeout ${formatDurationMs(hc.timeoutMs)} is longer than interval ${
            formatDurationMs(hc.intervalMs)
          }: a slow probe delays the next one`,
        ),
      );
    }
    if (l.balancer !== "maglev" && at.has([...here, "maglev"])) {
      warnings.push(
        at.issue(
          [...here, "maglev"],
          `maglev settings have no effect with balancer ${JSON.stringify(l.balancer)}`,
          "key",
        ),
      );
    }
  });
  return warnings;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
