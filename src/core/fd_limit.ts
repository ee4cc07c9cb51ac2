/**
 * The process's open-file limit, and whether it can hold the configured connections.
 *
 * Every proxied connection holds two file descriptors (client and backend socket), so a
 * common soft limit of 1,024 runs out near 500 connections; after that `accept` and
 * `connect` fail with `EMFILE` for everyone, admin and health checks included.
 *
 * Deno raises its soft limit to the hard limit when it starts, so the soft limit read at
 * run time is usually the hard one: raising it means raising the hard limit (`ulimit -Hn`,
 * systemd `LimitNOFILE`, the container runtime's `nofile`).
 *
 * @module
 */

/** Soft and hard limits on open file descriptors; `Infinity` when unlimited. */
export interface OpenFilesLimit {
  /** The limit the kernel enforces now (`ulimit -n`). */
  readonly soft: number;
  /** The ceiling the soft limit may be raised to without privileges (`ulimit -Hn`). */
  readonly hard: number;
}

/** Options of {@linkcode fdLimitWarning}. */
export interface FdLimitWarningOptions {
  /**
   * Descriptors kept aside for everything but proxied connections: stdio, listening
   * sockets, the admin server and its clients, health probes, the Kubernetes watch.
   * @default {DEFAULT_RESERVED_FDS}
   */
  readonly reservedFds?: number;
  /** The hard limit, to say how far the soft limit can be raised; omitted when unknown. */
  readonly hardLimit?: number;
}

/** File descriptors each proxied connection holds: the client's and the backend's socket. */
export const FDS_PER_CONNECTION = 2;

/** Descriptors {@linkcode fdLimitWarning} keeps aside for everything else. */
export const DEFAULT_RESERVED_FDS = 64;

const LIMITS_PATH = "/proc/self/limits";

/**
 * Reads the `Max open files` line of a `/proc/<pid>/limits` text.
 *
 * @returns the limits, or `undefined` when the line is missing or malformed
 */
export function parseOpenFilesLimit(text: string): OpenFilesLimit | undefined {
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (match === null) return undefined;
  const soft = parseLimit(match[1]!);
  const hard = parseLimit(match[2]!);
  if (soft === undefined || hard === undefined) return undefined;
  return { soft, hard };
}

/**
 * Reads this process's open-file limits.
 *
 * Deno guards `/proc/self` behind `--allow-all`, so this reads `/proc/self/limits` when that
 * is allowed, and otherwise asks `sh -c "ulimit -Sn; ulimit -Hn"` (a child inherits the
 * limits) when running `sh` is allowed. It never prompts for a permission.
 *
 * @returns the limits, or `undefined` when neither source is available (not Linux, or
 *   neither permission granted); never throws
 */
export function readOpenFilesLimit(): OpenFilesLimit | undefined {
  if (Deno.build.os !== "linux" && Deno.build.os !== "darwin") return undefined;
  if (Deno.build.os === "linux") {
    try {
      return parseOpenFilesLimit(Deno.readTextFileSync(LIMITS_PATH));
    } catch {
      // NotCapable without --allow-all: try the shell.
    }
  }
  try {
    if (Deno.permissions.querySync({ name: "run", command: "sh" }).state !== "granted") {
      return undefined;
    }
    const out = new Deno.Command("sh", {
      args: ["-c", "ulimit -Sn; ulimit -Hn"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    if (!out.success) return undefined;
    const [soft, hard] = new TextDecoder().decode(out.stdout).trim().split(/\s+/);
    const s = parseLimit(soft ?? "");
    const h = parseLimit(hard ?? "");
    return s === undefined || h === undefined ? undefined : { soft: s, hard: h };
  } catch {
    return undefined;
  }
}

/**
 * Says whether `softLimit` open files can hold every listener at its `maxConnections`.
 *
 * Pure: no I/O. Listeners with `maxConnections` 0 (unlimited) add nothing, since no count
 * can be checked for them.
 *
 * @param softLimit the soft open-file limit, e.g. from {@linkcode readOpenFilesLimit}
 * @param maxConnections each listener's `maxConnections`
 * @returns one warning line, or `undefined` when the limit is enough
 */
export function fdLimitWarning(
  softLimit: number,
  maxConnections: readonly number[],
  options: FdLimitWarningOptions = {},
): string | undefined {
  const reserved = options.reservedFds ?? DEFAULT_RESERVED_FDS;
  const connections = maxConnections.reduce((sum, n) => sum + (n > 0 ? n : 0), 0);
  if (connections === 0) return undefined;
  const needed = connections * FDS_PER_CONNECTION + reserved;
  if (needed <= softLimit) return undefined;
  const fit = Math.max(0, Math.floor((softLimit - reserved) / FDS_PER_CONNECTION));
  const hard = options.hardLimit;
  const raise = hard === undefined
    ? ""
    : hard >= needed
    ? ` (the hard limit ${formatLimit(hard)} allows it)`
    : ` (above the hard limit ${formatLimit(hard)}: raise that too)`;
  return `Open file limit ${softLimit} cannot hold maxConnections ${connections}: ` +
    `each proxied connection needs ${FDS_PER_CONNECTION} file descriptors, so about ${fit} ` +
    `connections fit before accept and connect fail with EMFILE; raise "ulimit -n" or ` +
    `LimitNOFILE to at least ${needed}${raise}`;
}

function parseLimit(text: string): number | undefined {
  if (text === "unlimited") return Infinity;
  if (!/^\d+$/.test(text)) return undefined;
  return Number(text);
}

function formatLimit(n: number): string {
  return n === Infinity ? "unlimited" : String(n);
}

/**
 * What to do about an `accept` or `connect` error, when it says the process is out of file
 * descriptors (`EMFILE`: this process's limit; `ENFILE`: the whole system's).
 *
 * Start-up can only warn about a low limit when it can read it, which Deno allows with
 * `--allow-all` alone; this hint reaches the operator under the least permissions too, at the
 * moment the limit is hit.
 *
 * @returns a sentence to append to the error's log line, or `""` for any other error
 */
export function fdExhaustionHint(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const text = String(error);
  if (code === "EMFILE" || /\(os error 24\)/.test(text)) {
    return `: the process is out of file descriptors; each proxied connection holds ` +
      `${FDS_PER_CONNECTION}, so raise "ulimit -n" or LimitNOFILE above ` +
      `${FDS_PER_CONNECTION} × maxConnections`;
  }
  if (code === "ENFILE" || /\(os error 23\)/.test(text)) {
    return `: the system is out of file descriptors; raise fs.file-max`;
  }
  return "";
}
