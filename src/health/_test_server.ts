/**
 * Tiny loopback TCP servers for the health tests. Every connection and the listener are
 * closed by `close()`, so Deno's resource and op sanitizers stay on.
 *
 * @module
 */
import { closeQuietly } from "../core/io.ts";

/** A running test server. */
export interface TestServer {
  readonly port: number;
  /** Requests (first bytes up to a blank line or 4 KiB) seen so far. */
  readonly received: string[];
  /** Closes the listener and every open connection; resolves when all handlers ended. */
  close(): Promise<void>;
}

/** Handles one accepted connection; the server closes it afterwards. */
export type Handler = (conn: Deno.TcpConn, server: TestServer) => Promise<void>;

/** Listens on 127.0.0.1 (port 0 = any free port) and runs `handler` per connection. */
export function startServer(handler: Handler, port = 0): TestServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const conns = new Set<Deno.TcpConn>();
  const tasks = new Set<Promise<void>>();
  const server: TestServer = {
    port: listener.addr.port,
    received: [],
    async close() {
      closeQuietly(listener);
      for (const conn of conns) closeQuietly(conn);
      await loop;
      await Promise.all([...tasks]);
    },
  };
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const task: Promise<void> = handler(conn, server).catch(() => {}).finally(() => {
          closeQuietly(conn);
          conns.delete(conn);
          tasks.delete(task);
        });
        tasks.add(task);
      }
    } catch {
      // listener closed
    }
  })();
  return server;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Reads until `marker` was seen, EOF, or 4 KiB; returns the text read. */
export async function readUntil(conn: Deno.Conn, marker: string): Promise<string> {
  const buffer = new Uint8Array(1024);
  let text = "";
  while (!text.includes(marker) && text.length < 4096) {
    const n = await conn.read(buffer);
    if (n === null) break;
    text += decoder.decode(buffer.subarray(0, n));
  }
  return text;
}

/** Writes all of `text`. */
export async function write(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/** Accepts and closes at once. */
export const acceptAndClose: Handler = () => Promise.resolve();

/** Never answers; waits for the client to close. */
export const silent: Handler = async (conn) => {
  await readUntil(conn, "\u0000never");
};

/** Answers an HTTP request with `status` and a short body. */
export function httpStatus(status: number): Handler {
  return async (conn, server) => {
    server.received.push(await readUntil(conn, "\r\n\r\n"));
    await write(conn, `HTTP/1.1 ${status} Whatever\r\nContent-Length: 2\r\n\r\nok`);
  };
}

/** Resolves when `predicate` holds, polling every 5ms; rejects after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs = 5000,
  what = "condition",
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs}ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A port nothing listens on (bound once, then released). */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}
