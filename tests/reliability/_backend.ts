/**
 * A backend as its own process, so a test can kill it (SIGKILL) or run it inside a network
 * namespace (`ip netns exec NS deno run --allow-net _backend.ts ...`).
 *
 * Usage: `_backend.ts HOST PORT NAME`. Per connection it writes `NAME` padded with spaces to
 * {@linkcode GREETING_BYTES} bytes, then echoes every byte until the client's EOF, then
 * shuts down its write side. Health probes (connect, then close) are harmless. Prints
 * `ready <port>` on stdout once listening; exits on SIGTERM or SIGINT.
 *
 * @module
 */

/** Length of the greeting that names the backend a connection landed on. */
export const GREETING_BYTES = 8;

/** The greeting a backend named `name` sends first. */
export function greeting(name: string): Uint8Array {
  if (name.length > GREETING_BYTES) {
    throw new RangeError(`Backend name is too long: ${name.length} > ${GREETING_BYTES}`);
  }
  return new TextEncoder().encode(name.padEnd(GREETING_BYTES, " "));
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

async function serveOne(conn: Deno.TcpConn, hello: Uint8Array): Promise<void> {
  try {
    await writeAll(conn, hello);
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      await writeAll(conn, buffer.subarray(0, n));
    }
    await conn.closeWrite();
    await conn.read(new Uint8Array(1));
  } catch {
    // The peer went away; nothing to report from a test backend.
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

if (import.meta.main) {
  const [hostname = "127.0.0.1", portText = "0", name = "b"] = Deno.args;
  const hello = greeting(name);
  const listener = Deno.listen({ hostname, port: Number(portText) });
  const stop = () => {
    listener.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  console.log(`ready ${listener.addr.port}`);
  for await (const conn of listener) void serveOne(conn, hello);
}
