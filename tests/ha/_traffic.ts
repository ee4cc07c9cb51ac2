/**
 * The traffic side of the high-availability suite: the client in its namespace (a probe
 * every 20 ms, one connection per source, long-lived connections) and what one run saw
 * (failed and slow connections, windows, p50 and max).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { CLIENT_SOURCES, type Lab } from "./_lab.ts";
import { LISTEN_PORT } from "./_instances.ts";
import type { Attempt } from "./_client.ts";

export type { Attempt };

/** Runs per scenario: five, as the issue asks (`NAUTILUS_HA_RUNS` overrides it). */
export const RUNS = Number(Deno.env.get("NAUTILUS_HA_RUNS") ?? 5);
/** The client's cadence: one new connection every 20 ms. */
export const PROBE_INTERVAL_MS = 20;
/** Longer than one SYN retransmit (1 s), so a connect that needed one still counts as slow, not failed. */
export const CONNECT_TIMEOUT_MS = 3_000;
const CLIENT_SCRIPT = fileURLToPath(new URL("./_client.ts", import.meta.url));
/** A running `_client.ts probe`: one connection every 20 ms until {@linkcode Probe.stop}. */
export class Probe {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: Lines;

  /** Probes `host` from the client's own address, or from each of `sources` in turn. */
  constructor(lab: Lab, host: string, sources: readonly string[] = []) {
    this.#child = clientCommand(lab, [
      "probe",
      host,
      String(LISTEN_PORT),
      String(PROBE_INTERVAL_MS),
      String(CONNECT_TIMEOUT_MS),
      ...sources,
    ]);
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = new Lines(this.#child.stdout);
  }

  /** Waits until the client's first connection ended (Deno's start-up takes a while). */
  async warmUp(): Promise<void> {
    await this.#lines.next();
  }

  /** Stops opening connections, waits for those in flight, returns every attempt. */
  async stop(): Promise<Attempt[]> {
    await this.#writer.close();
    const attempts = (JSON.parse(await this.#lines.next()) as { attempts: Attempt[] }).attempts;
    await this.#lines.close();
    await this.#child.status;
    return attempts;
  }
}

function clientCommand(lab: Lab, args: readonly string[]): Deno.ChildProcess {
  const argv = [
    ...lab.prefix("client"),
    Deno.execPath(),
    "run",
    "--allow-net",
    CLIENT_SCRIPT,
    ...args,
  ];
  return new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/** Lines of a child's stdout, one at a time. */
class Lines {
  readonly #reader: ReadableStreamDefaultReader<string>;
  #pending = "";

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  async next(): Promise<string> {
    while (!this.#pending.includes("\n")) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error("The client exited early");
      this.#pending += value;
    }
    const index = this.#pending.indexOf("\n");
    const line = this.#pending.slice(0, index);
    this.#pending = this.#pending.slice(index + 1);
    return line;
  }

  async close(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/** Runs `_client.ts` in the client namespace with `args` and returns its JSON output. */
export async function clientOnce<T>(lab: Lab, args: readonly string[]): Promise<T> {
  const { code, stdout, stderr } = await new Deno.Command(lab.prefix("client")[0]!, {
    args: [
      ...lab.prefix("client").slice(1),
      Deno.execPath(),
      "run",
      "--allow-net",
      CLIENT_SCRIPT,
      ...args,
    ],
  }).output();
  const decoder = new TextDecoder();
  if (code !== 0) {
    throw new Error(`Client failed with exit code ${code}: ${decoder.decode(stderr)}`);
  }
  return JSON.parse(decoder.decode(stdout)) as T;
}

/**
 * A running `_client.ts hold`: one long-lived connection per source address. With a
 * `localPort` every connection leaves from that port, so its four-tuple cannot match a
 * stale connection of an earlier holder (one an instance still holds after the router moved
 * its client elsewhere); without one the ports are ephemeral.
 */
export class Holder {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: Lines;

  constructor(
    lab: Lab,
    host: string,
    sources: readonly string[] = CLIENT_SOURCES,
    localPort = 0,
  ) {
    this.#child = clientCommand(lab, [
      "hold",
      host,
      String(LISTEN_PORT),
      String(CONNECT_TIMEOUT_MS),
      String(localPort),
      ...sources,
    ]);
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = new Lines(this.#child.stdout);
  }

  /** The connections as opened. */
  async opened(): Promise<Attempt[]> {
    return (JSON.parse(await this.#lines.next()) as { opened: Attempt[] }).opened;
  }

  /** Writes and reads 16 bytes on every open connection. */
  async check(): Promise<Attempt[]> {
    await this.#writer.write(new TextEncoder().encode("check\n"));
    return (JSON.parse(await this.#lines.next()) as { checked: Attempt[] }).checked;
  }

  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.#lines.close();
    await this.#child.status;
  }
}

/** What one run saw: failed connections and the window from the first to the last. */
export interface Outage {
  readonly attempts: number;
  readonly failed: number;
  readonly refused: number;
  /** Milliseconds from the start of the first failed connection to that of the last. */
  readonly windowMs: number;
  /** Failures by error code. */
  readonly errors: Readonly<Record<string, number>>;
  /** Connections that succeeded but took over 500 ms (a SYN retransmitted after 1 s). */
  readonly slow: number;
  /** As `windowMs`, over failed and slow connections: the stall a client sees. */
  readonly stallWindowMs: number;
  /** The first failed or slow connections: start relative to the fault, duration, error. */
  readonly disrupted: readonly string[];
}

/** Connections slower than this count as stalled. */
const SLOW_MS = 500;

/** Summarises a probe's attempts; `faultAt` (epoch ms) is when the fault was injected. */
export function outageOf(attempts: readonly Attempt[], faultAt: number): Outage {
  const failed = attempts.filter((a) => !a.ok);
  const stalled = attempts.filter((a) => !a.ok || a.ms > SLOW_MS);
  const errors: Record<string, number> = {};
  for (const a of failed) errors[a.error ?? "?"] = (errors[a.error ?? "?"] ?? 0) + 1;
  const span = (list: readonly Attempt[]) =>
    list.length === 0 ? 0 : Math.max(...list.map((a) => a.t)) - Math.min(...list.map((a) => a.t));
  return {
    attempts: attempts.length,
    failed: failed.length,
    refused: errors["ECONNREFUSED"] ?? 0,
    windowMs: span(failed),
    errors,
    slow: stalled.length - failed.length,
    stallWindowMs: span(stalled),
    disrupted: stalled.slice(0, 6).map((a) =>
      `${a.t - faultAt}ms+${a.ms}ms:${a.ok ? "slow" : a.error}`
    ),
  };
}

/** p50 (lower median) and max of `values`. */
export function p50Max(values: readonly number[]): { p50: number; max: number } {
  const sorted = [...values].sort((x, y) => x - y);
  return { p50: sorted[Math.floor((sorted.length - 1) / 2)] ?? 0, max: sorted.at(-1) ?? 0 };
}
