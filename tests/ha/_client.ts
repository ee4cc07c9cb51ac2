/**
 * The client of the high-availability suite, run inside the client namespace
 * (`ip netns exec NS deno run --allow-net _client.ts MODE ...`). It talks to the
 * `_backend.ts` echo backends through the load balancer: each connection reads the
 * 8-byte greeting (the backend's name), sends 16 bytes and reads them back.
 *
 * Modes (results as JSON on stdout):
 * - `probe HOST PORT INTERVAL_MS TIMEOUT_MS [SOURCE...]`: opens a connection every
 *   `INTERVAL_MS` (from each source address in turn, if given) until stdin closes; prints `{ started: true }` once the first one ended, and
 *   `{ attempts: Attempt[] }` at the end.
 * - `once HOST[,HOST...] PORT TIMEOUT_MS SOURCE...`: one connection from every source
 *   address to every host; prints `{ results: Attempt[] }`.
 * - `hold HOST PORT TIMEOUT_MS LOCAL_PORT SOURCE...`: opens one connection from every source
 *   (from `LOCAL_PORT` on each, or an ephemeral port when it is 0) and prints
 *   `{ opened: Attempt[] }` (one line); on each stdin line `check` writes and reads
 *   16 bytes on every open connection and prints `{ checked: Attempt[] }`; closes all on EOF.
 *
 * @module
 */
import net from "node:net";

/** One connection's outcome. */
export interface Attempt {
  /** Start, milliseconds since the epoch. */
  readonly t: number;
  /** Duration in milliseconds. */
  readonly ms: number;
  /** Whether the greeting and the echo came through. */
  readonly ok: boolean;
  /** The backend's name, when the greeting came. */
  readonly backend?: string;
  /** `ECONNREFUSED`, `ECONNRESET`, `ETIMEDOUT`, `EOF`, ... when it failed. */
  readonly error?: string;
  readonly source?: string;
  readonly host?: string;
  /** The client's port, to match the connection in `ss` output. */
  readonly localPort?: number;
}

const GREETING_BYTES = 8;
const PAYLOAD = new TextEncoder().encode("nautiluslb-ha-01");

/** Reads exactly `n` more bytes from `socket`, failing on error, EOF or timeout. */
class Reader {
  #buffered: Uint8Array[] = [];
  #length = 0;
  #waiter: (() => void) | undefined;
  #error: string | undefined;
  constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Uint8Array) => {
      this.#buffered.push(chunk);
      this.#length += chunk.length;
      this.#waiter?.();
    });
    socket.on("error", (e: Error & { code?: string }) => this.#fail(e.code ?? e.message));
    socket.on("end", () => this.#fail("EOF"));
    socket.on("close", () => this.#fail("EOF"));
  }
  #fail(error: string): void {
    this.#error ??= error;
    this.#waiter?.();
  }
  async read(n: number, deadline: number): Promise<Uint8Array> {
    while (this.#length < n) {
      if (this.#error !== undefined) throw new Error(this.#error);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("ETIMEDOUT");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
    const all = new Uint8Array(this.#length);
    let offset = 0;
    for (const chunk of this.#buffered) {
      all.set(chunk, offset);
      offset += chunk.length;
    }
    this.#buffered = [all.subarray(n)];
    this.#length -= n;
    return all.subarray(0, n);
  }
}

/** An open connection with its greeting read. */
interface Open {
  readonly socket: net.Socket;
  readonly reader: Reader;
  readonly attempt: Attempt;
}

function errorCode(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function open(
  host: string,
  port: number,
  timeoutMs: number,
  source?: string,
  localPort = 0,
): Promise<Open | Attempt> {
  const t = Date.now();
  const deadline = t + timeoutMs;
  const socket = net.createConnection({
    host,
    port,
    ...(source === undefined ? {} : { localAddress: source }),
    ...(localPort === 0 ? {} : { localPort }),
  });
  const reader = new Reader(socket);
  const base = { t, ...(source === undefined ? {} : { source }), host };
  try {
    const greeting = await reader.read(GREETING_BYTES, deadline);
    const backend = new TextDecoder().decode(greeting).trim();
    return {
      socket,
      reader,
      attempt: { ...base, ms: Date.now() - t, ok: true, backend, localPort: socket.localPort },
    };
  } catch (error) {
    socket.destroy();
    return { ...base, ms: Date.now() - t, ok: false, error: errorCode(error) };
  }
}

async function echo(o: Open, timeoutMs: number): Promise<Attempt> {
  const t = Date.now();
  try {
    o.socket.write(PAYLOAD);
    const back = await o.reader.read(PAYLOAD.length, t + timeoutMs);
    if (new TextDecoder().decode(back) !== new TextDecoder().decode(PAYLOAD)) {
      throw new Error("EBADECHO");
    }
    return { ...o.attempt, ms: o.attempt.ms + Date.now() - t };
  } catch (error) {
    return { ...o.attempt, ms: o.attempt.ms + Date.now() - t, ok: false, error: errorCode(error) };
  }
}

/** One full exchange: connect, greeting, echo, close. */
async function exchange(
  host: string,
  port: number,
  timeoutMs: number,
  source?: string,
): Promise<Attempt> {
  const opened = await open(host, port, timeoutMs, source);
  if (!("socket" in opened)) return opened;
  const result = await echo(opened, timeoutMs);
  opened.socket.end();
  opened.socket.destroy();
  return result;
}

async function stdinLines(onLine: (line: string) => Promise<void>): Promise<void> {
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let pending = "";
  for await (const chunk of lines) {
    pending += chunk;
    let index;
    while ((index = pending.indexOf("\n")) >= 0) {
      await onLine(pending.slice(0, index).trim());
      pending = pending.slice(index + 1);
    }
  }
}

function print(value: unknown): void {
  console.log(JSON.stringify(value));
}

async function probe(args: string[]): Promise<void> {
  const [host = "", port = "0", intervalMs = "20", timeoutMs = "3000", ...sources] = args;
  const running: Promise<Attempt>[] = [];
  let isDone = false;
  const ended = stdinLines(() => Promise.resolve()).finally(() => isDone = true);
  let next = performance.now();
  while (!isDone) {
    const source = sources.length === 0 ? undefined : sources[running.length % sources.length];
    const attempt = exchange(host, Number(port), Number(timeoutMs), source);
    // The first one tells the test that the client runs.
    if (running.length === 0) void attempt.then(() => print({ started: true }));
    running.push(attempt);
    next += Number(intervalMs);
    await Promise.race([
      ended,
      new Promise((r) => setTimeout(r, Math.max(0, next - performance.now()))),
    ]);
  }
  print({ attempts: await Promise.all(running) });
}

async function once(args: string[]): Promise<void> {
  const [hosts = "", port = "0", timeoutMs = "3000", ...sources] = args;
  const results: Attempt[] = [];
  for (const source of sources) {
    for (const host of hosts.split(",")) {
      results.push(await exchange(host, Number(port), Number(timeoutMs), source));
    }
  }
  print({ results });
}

async function hold(args: string[]): Promise<void> {
  const [host = "", port = "0", timeoutMs = "3000", localPort = "0", ...sources] = args;
  const opened = await Promise.all(
    sources.map((s) => open(host, Number(port), Number(timeoutMs), s, Number(localPort))),
  );
  print({ opened: opened.map((o) => "socket" in o ? o.attempt : o) });
  const live = opened.filter((o): o is Open => "socket" in o);
  await stdinLines(async (line) => {
    if (line === "check") {
      print({ checked: await Promise.all(live.map((o) => echo(o, Number(timeoutMs)))) });
    }
  });
  for (const o of live) o.socket.destroy();
}

if (import.meta.main) {
  const [mode, ...rest] = Deno.args;
  const modes: Record<string, (args: string[]) => Promise<void>> = { probe, once, hold };
  const run = modes[mode ?? ""];
  if (run === undefined) {
    console.error(`Unknown mode ${mode}: expected probe, once or hold`);
    Deno.exit(2);
  }
  await run(rest);
}
