/**
 * The two ends of `bench/tls_bench.ts`, run as child processes pinned to the load core:
 * - `backend PORT`: accepts, reads the client's first bytes (the replayed ClientHello),
 *   answers 4 bytes and closes.
 * - `client PORT SECONDS CONCURRENCY`: that many loops each connect, send one ClientHello
 *   (`api.example.com`, 512 bytes as browsers pad them), read the 4-byte answer and close;
 *   prints `{"connections": N, "failures": N}` after SECONDS.
 *
 * No TLS crypto at either end: what is measured is the proxy's new-connection path (accept,
 * peek, parse, route, dial, replay), not the handshake's cost, which the proxy never pays.
 *
 * @module
 */
import { buildClientHello } from "../src/proxy/tls/_test_hello.ts";

const [mode, ...rest] = Deno.args;

async function backend(port: number): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const answer = new TextEncoder().encode("api_");
  const buffer = new Uint8Array(4096);
  for await (const conn of listener) {
    (async () => {
      try {
        if ((await conn.read(buffer)) !== null) await conn.write(answer);
      } catch {
        // client gone
      } finally {
        try {
          conn.close();
        } catch {
          // closed
        }
      }
    })();
  }
}

async function client(port: number, seconds: number, concurrency: number): Promise<void> {
  const hello = buildClientHello({ serverName: "api.example.com", padTo: 512 });
  const until = performance.now() + seconds * 1000;
  let connections = 0;
  let failures = 0;
  const loop = async () => {
    const buffer = new Uint8Array(8);
    while (performance.now() < until) {
      let conn: Deno.TcpConn | undefined;
      try {
        conn = await Deno.connect({ hostname: "127.0.0.1", port });
        await conn.write(hello);
        let got = 0;
        while (got < 4) {
          const n = await conn.read(buffer.subarray(got));
          if (n === null) break;
          got += n;
        }
        if (got === 4) connections++;
        else failures++;
      } catch {
        failures++;
      } finally {
        try {
          conn?.close();
        } catch {
          // closed
        }
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  console.log(JSON.stringify({ connections, failures }));
}

if (mode === "backend") await backend(Number(rest[0]));
else if (mode === "client") await client(Number(rest[0]), Number(rest[1]), Number(rest[2]));
else throw new TypeError(`Cannot run ${mode}: expected "backend" or "client"`);
