/**
 * Shared helpers for integration tests: small TCP backends on `127.0.0.1` port 0, reading
 * helpers, checksums and bounded waits. Every server tracks its sockets and closes them all
 * in {@linkcode TestServer.close}, so Deno's resource and op sanitizers stay on.
 *
 * @module
 */
import { createBalancer } from "../src/balancer/mod.ts";
import type { Backend, BalancerKind } from "../src/core/types.ts";
import { Pool, type PoolOptions } from "../src/pool/mod.ts";
import { ProxyListener, type ProxyListenerOptions } from "../src/proxy/mod.ts";
import { closeQuietly, writeAll } from "../src/core/io.ts";

/** The loopback address every test binds and dials. */
export const HOST = "127.0.0.1";

/** Upper bound for any single wait in a test, so a bug fails the test instead of hanging. */
export const WAIT_MS = 5_000;

/** Handles one accepted connection; the server closes the socket after it settles. */
export type ConnHandler = (conn: Deno.TcpConn, server: TestServer) => Promise<void>;

/**
 * A TCP server on `127.0.0.1` port 0 that runs `handler` per connection.
 *
 * Ownership: the server closes every accepted socket once its handler settles, and all of
 * them (plus the listener) in {@linkcode TestServer.close}. Handler errors are swallowed:
 * a test observes behaviour from the client side.
 */
export class TestServer {
  readonly port: number;
  /** Connections accepted so far. */
  accepted = 0;
  #listener: Deno.TcpListener;
  #conns = new Set<Deno.TcpConn>();
  #tasks = new Set<Promise<void>>();
  #loop: Promise<void>;
  #isClosed = false;

  /** @param port a fixed port (to restart a killed backend on its address); 0 picks one */
  constructor(handler: ConnHandler, port = 0) {
    this.#listener = Deno.listen({ hostname: HOST, port });
    this.port = this.#listener.addr.port;
    this.#loop = this.#accept(handler);
  }

  /** Connections currently open on the server side. */
  get openConnections(): number {
    return this.#conns.size;
  }

  /** This server as a pool backend. */
  get backend(): Backend {
    return backendAt(this.port);
  }

  async #accept(handler: ConnHandler): Promise<void> {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return;
      }
      this.accepted++;
      this.#conns.add(conn);
      const task = handler(conn, this)
        .catch(() => {})
        .finally(() => {
          this.#conns.delete(conn);
          closeQuietly(conn);
          this.#tasks.delete(task);
        });
      this.#tasks.add(task);
    }
  }

  /** Closes the listener and every open connection, then waits for all handlers. */
  async close(): Promise<void> {
    if (!this.#isClosed) {
      this.#isClosed = true;
      closeQuietly(this.#listener);
    }
    for (const conn of this.#conns) closeQuietly(conn);
    await this.#loop;
    await Promise.all([...this.#tasks]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Echoes every byte back; on EOF from the client, shuts down its own write side. */
export function startEcho(): TestServer {
  return new TestServer(async (conn) => {
    await copy(conn, conn);
    await conn.closeWrite().catch(() => {});
    // Wait for the client to close, so the proxy sees a clean EOF both ways.
    await conn.read(new Uint8Array(1)).catch(() => null);
  });
}

/**
 * Sends `name` at once, then holds the connection open (discarding input) until the client
 * closes it. Tells which backend a proxied connection landed on.
 */
export function startNamed(name: string, port = 0): TestServer {
  return new TestServer(async (conn) => {
    await writeAll(conn, new TextEncoder().encode(name));
    const scratch = new Uint8Array(1024);
    while ((await conn.read(scratch)) !== null) {
      // discard
    }
  }, port);
}

/**
 * Reads the client's request to EOF, then answers `answer(request)` and closes. Shows that a
 * half-closed client still gets its answer.
 */
export function startSink(answer: (request: Uint8Array) => Uint8Array): TestServer {
  return new TestServer(async (conn) => {
    const request = await readAll(conn);
    await writeAll(conn, answer(request));
  });
}

/** Accepts and says nothing; holds the connection until the client or the test closes it. */
export function startSilent(): TestServer {
  return new TestServer(async (conn) => {
    await conn.read(new Uint8Array(1)).catch(() => null);
  });
}

/** A pool backend for `127.0.0.1:port`. */
export function backendAt(port: number, weight = 1): Backend {
  return { key: `${HOST}:${port}`, host: HOST, port, weight };
}

/** A port that was free a moment ago: bound on port 0, then closed. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Connects to `127.0.0.1:port`, failing after {@linkcode WAIT_MS}. */
export function connect(port: number): Promise<Deno.TcpConn> {
  return withTimeout(Deno.connect({ hostname: HOST, port }), WAIT_MS, `connect to ${port}`);
}

export { closeQuietly, writeAll };

/** Copies `src` to `dst` until EOF; returns the byte count. */
export async function copy(src: Deno.Conn, dst: Deno.Conn): Promise<number> {
  const buffer = new Uint8Array(64 * 1024);
  let total = 0;
  while (true) {
    const n = await src.read(buffer);
    if (n === null) return total;
    await writeAll(dst, buffer.subarray(0, n));
    total += n;
  }
}

/** Reads until EOF (a reset counts as EOF) and returns everything read. */
export async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  while (true) {
    let n: number | null;
    try {
      n = await conn.read(buffer);
    } catch (error) {
      if (isPeerGone(error)) break;
      throw error;
    }
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
  }
  return concat(chunks);
}

/** Reads exactly `length` bytes; throws on an early EOF. */
export async function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let offset = 0;
  while (offset < length) {
    const n = await conn.read(out.subarray(offset));
    if (n === null) {
      throw new Error(`Unexpected EOF: read ${offset} of ${length} bytes`);
    }
    offset += n;
  }
  return out;
}

/** Reads the `length`-byte greeting of a {@linkcode startNamed} backend, bounded. */
export async function readName(conn: Deno.Conn, length: number): Promise<string> {
  const bytes = await withTimeout(readExactly(conn, length), WAIT_MS, "backend name");
  return new TextDecoder().decode(bytes);
}

/**
 * Resolves `true` when the peer closed `conn` (EOF or reset) within `ms`, `false` when
 * the connection is still open at the deadline or delivers data. Does not close `conn`.
 */
export async function isClosedWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"open">((resolve) => timer = setTimeout(() => resolve("open"), ms));
  const read = conn.read(new Uint8Array(1)).then(
    (n) => (n === null ? "closed" as const : "data" as const),
    () => "closed" as const,
  );
  try {
    const result = await Promise.race([read, timeout]);
    if (result === "open") {
      // The read stays pending; closing the socket later settles it.
      read.catch(() => {});
    }
    return result === "closed";
  } finally {
    clearTimeout(timer);
  }
}

/** `count` random bytes (crypto.getRandomValues fills at most 64 KiB per call). */
export function randomBytes(count: number): Uint8Array {
  const out = new Uint8Array(count);
  for (let offset = 0; offset < count; offset += 65_536) {
    crypto.getRandomValues(out.subarray(offset, Math.min(count, offset + 65_536)));
  }
  return out;
}

/** Lower-case hex SHA-256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Joins byte chunks. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, c) => sum + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** Rejects with a clear message when `promise` takes longer than `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms}ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `predicate` every 10 ms until it holds; throws after `ms`. */
export async function waitFor(
  predicate: () => boolean,
  what: string,
  ms: number = WAIT_MS,
): Promise<void> {
  const deadline = performance.now() + ms;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`Timed out after ${ms}ms: ${what}`);
    await delay(10);
  }
}

/**
 * Polls `check` every 25 ms until it resolves true; returns the elapsed ms, throws after `ms`.
 * For async checks; {@linkcode waitFor} polls a synchronous predicate faster.
 */
export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  what: string,
  ms: number,
): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > ms) throw new Error(`Timed out after ${ms}ms: ${what}`);
    await delay(25);
  }
  return performance.now() - started;
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isPeerGone(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted;
}

/** Options of {@linkcode startProxy}. */
export interface TestProxyOptions
  extends Omit<ProxyListenerOptions, "name" | "hostname" | "port" | "picker"> {
  readonly backends: readonly Backend[];
  /** @default {"round_robin"} */
  readonly balancer?: BalancerKind;
  readonly pool?: Omit<PoolOptions, "name" | "balancer">;
}

/** A {@linkcode ProxyListener} on `127.0.0.1` port 0 in front of a live {@linkcode Pool}. */
export interface TestProxy {
  readonly listener: ProxyListener;
  readonly pool: Pool;
  readonly port: number;
  /** Stops the listener (force-closing what is open), then closes the pool. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a proxy listener serving `options.backends` through a fresh balancer. */
export function startProxy(options: TestProxyOptions): TestProxy {
  const { backends, balancer, pool: poolOptions, ...listenerOptions } = options;
  const pool = new Pool({
    name: "test",
    balancer: createBalancer(balancer ?? "round_robin"),
    ...poolOptions,
  });
  pool.update(backends);
  const listener = new ProxyListener({
    name: "test",
    hostname: HOST,
    port: 0,
    picker: pool,
    ...listenerOptions,
  });
  const { port } = listener.listen();
  const serving = listener.serve();
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      await listener.shutdown(0);
      await serving;
      pool.close();
    })();
  return { listener, pool, port, close, [Symbol.asyncDispose]: close };
}
