/**
 * TLS passthrough end to end through a running NautilusLB (`serve`, `protocol: tls`):
 * clients (`curl --resolve`, `openssl s_client -servername`, Deno's TLS client) complete
 * handshakes with backends that each hold their own certificate, verified against a test
 * CA, so a wrong route fails the handshake. The route pools are health-checked with TLS
 * checks, shown per route on `/pools`, and carry bulk data intact both ways.
 *
 * Bulk size: `NAUTILUS_TLS_BULK_MIB` MiB each way (default 64; the 1 GiB was run
 * by hand, see docs/tls_routing.md). Needs openssl and curl (`bash scripts/tls_install.sh`).
 */
import assert from "node:assert/strict";
import { ServeProcess } from "../reliability/_harness.ts";
import { closeQuietly, randomBytes, sha256Hex } from "../_helpers.ts";
import { findExecutable, PEER_HOST } from "./_peers.ts";

const hasTools = findExecutable("openssl") !== undefined && findExecutable("curl") !== undefined;
if (Deno.env.get("NAUTILUS_INTEROP_REQUIRED") === "1" && !hasTools) {
  throw new Error("Cannot run the TLS handshake tests: openssl and curl are required");
}
const BULK_MIB = Number(Deno.env.get("NAUTILUS_TLS_BULK_MIB") ?? "64");

function freePort(): number {
  const listener = Deno.listen({ hostname: PEER_HOST, port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

async function run(argv: string[], stdin?: string): Promise<{ code: number; out: string }> {
  const child = new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, out: decoder.decode(stdout) + decoder.decode(stderr) };
}

/** A test CA and one certificate per name, signed by it, in `dir`. */
async function makeCertificates(dir: string, names: readonly string[]): Promise<void> {
  const ossl = async (...args: string[]) => {
    const { code, out } = await run(["openssl", ...args]);
    if (code !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${out}`);
  };
  await ossl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=NautilusLB test CA",
    "-keyout",
    `${dir}/ca.key`,
    "-out",
    `${dir}/ca.pem`,
  );
  for (const name of names) {
    await ossl(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      `${dir}/${name}.key`,
      "-out",
      `${dir}/${name}.csr`,
    );
    await Deno.writeTextFile(`${dir}/${name}.ext`, `subjectAltName=DNS:${name}\n`);
    await ossl(
      "x509",
      "-req",
      "-in",
      `${dir}/${name}.csr`,
      "-CA",
      `${dir}/ca.pem`,
      "-CAkey",
      `${dir}/ca.key`,
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      `${dir}/${name}.ext`,
      "-out",
      `${dir}/${name}.pem`,
    );
  }
}

/**
 * A TLS backend with its own certificate: an HTTP `GET` gets `200` and the backend's name;
 * anything else is echoed back until the client closes its side.
 */
function startTlsBackend(dir: string, name: string) {
  const listener = Deno.listenTls({
    hostname: PEER_HOST,
    port: 0,
    cert: Deno.readTextFileSync(`${dir}/${name}.pem`),
    key: Deno.readTextFileSync(`${dir}/${name}.key`),
  });
  const conns = new Set<Deno.TlsConn>();
  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        try {
          const buffer = new Uint8Array(65536);
          let first = true;
          while (true) {
            const n = await conn.read(buffer);
            if (n === null) break;
            if (first && new TextDecoder().decode(buffer.subarray(0, 4)) === "GET ") {
              await writeAll(conn, new TextEncoder().encode(`HTTP/1.0 200 OK\r\n\r\n${name}\n`));
              break;
            }
            first = false;
            await writeAll(conn, buffer.subarray(0, n));
          }
        } catch {
          // client gone, or a health check's bare handshake
        } finally {
          conns.delete(conn);
          closeQuietly(conn);
        }
      })();
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    async close() {
      listener.close();
      for (const conn of conns) closeQuietly(conn);
      await serving;
    },
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

Deno.test({
  name: "interop: TLS handshakes through routes to backends with their own certificates",
  ignore: !hasTools,
  async fn() {
    // Made first: filling a large buffer blocks this isolate, where the backends run.
    const data = randomBytes(BULK_MIB * 1024 * 1024);
    const dir = await Deno.makeTempDir({ prefix: "nautiluslb_tls_" });
    const names = ["api.example.com", "www.example.com"];
    await makeCertificates(dir, names);
    const api = startTlsBackend(dir, names[0]!);
    const web = startTlsBackend(dir, names[1]!);
    const port = freePort();
    const adminPort = freePort();
    const config = `
settings:
  adminAddress: "127.0.0.1:${adminPort}"
  logLevel: warning
configurations:
  - name: edge
    listenerAddress: "${PEER_HOST}:${port}"
    protocol: tls
    idleTimeout: 60s
    healthCheck: { interval: 200ms, timeout: 1s, rise: 1, fall: 5, tls: true }
    tls:
      routes:
        - { name: api, hosts: [api.example.com], backends: ["${PEER_HOST}:${api.port}"] }
        - { name: web, hosts: ["*.example.com"], backends: ["${PEER_HOST}:${web.port}"] }
`;
    let serve: ServeProcess | undefined;
    try {
      serve = await ServeProcess.start(config, adminPort);
      // Each route is a pool of its own, TLS-checked.
      for (const [pool, backend] of [["edge/api", api], ["edge/web", web]] as const) {
        const key = `${PEER_HOST}:${backend.port}`;
        const until = Date.now() + 10_000;
        while ((await serve.health(pool, key)) !== "healthy" && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(await serve.health(pool, key), "healthy", `${pool}: ${serve.output}`);
        assert.equal(await serve.metric("nautiluslb_backend_up", { pool, backend: key }), 1);
      }

      for (const host of names) {
        const curl = await run([
          "curl",
          "-sS",
          "--max-time",
          "10",
          "--cacert",
          `${dir}/ca.pem`,
          "--resolve",
          `${host}:${port}:${PEER_HOST}`,
          `https://${host}:${port}/`,
        ]);
        assert.equal(curl.code, 0, curl.out);
        assert.equal(curl.out.trim(), host, `curl to ${host} reached ${curl.out}`);
      }

      const sClient = await run([
        "openssl",
        "s_client",
        "-connect",
        `${PEER_HOST}:${port}`,
        "-servername",
        "api.example.com",
        "-verify_hostname",
        "api.example.com",
        "-CAfile",
        `${dir}/ca.pem`,
        "-verify_return_error",
        "-quiet",
      ], "GET / HTTP/1.0\r\n\r\n");
      assert.equal(sClient.code, 0, sClient.out);
      assert.match(sClient.out, /api\.example\.com\n/);
      assert.match(sClient.out, /verify return:1/);

      // A name no route takes: closed before any byte of a handshake, and counted.
      const refused = await run([
        "curl",
        "-sS",
        "--max-time",
        "10",
        "--cacert",
        `${dir}/ca.pem`,
        "--resolve",
        `nope.test:${port}:${PEER_HOST}`,
        `https://nope.test:${port}/`,
      ]);
      assert.notEqual(refused.code, 0);
      assert.equal(
        await serve.metric("nautiluslb_connections_refused_total", { cause: "tls_no_route" }),
        1,
      );

      // Bulk both ways at once through the api route, checked by sha256.
      const tcp = await Deno.connect({ hostname: PEER_HOST, port });
      const tls = await Deno.startTls(tcp, {
        hostname: "api.example.com",
        caCerts: [await Deno.readTextFile(`${dir}/ca.pem`)],
      });
      try {
        const started = performance.now();
        const writing = (async () => {
          for (let at = 0; at < data.length; at += 1 << 20) {
            await writeAll(tls, data.subarray(at, at + (1 << 20)));
          }
          await tls.closeWrite();
        })();
        writing.catch(() => {}); // awaited below; a read failure must not leave it unhandled
        const received = new Uint8Array(data.length);
        let filled = 0;
        try {
          while (filled < data.length) {
            const n = await tls.read(received.subarray(filled));
            if (n === null) break;
            filled += n;
          }
          await writing;
        } catch (error) {
          throw new Error(`Bulk transfer broke after ${filled} bytes: ${serve.output}`, {
            cause: error,
          });
        }
        const seconds = (performance.now() - started) / 1000;
        assert.equal(filled, data.length);
        assert.equal(await sha256Hex(received), await sha256Hex(data));
        console.log(
          `${BULK_MIB} MiB each way through a tls route in ${seconds.toFixed(1)} s (${
            (2 * BULK_MIB / seconds).toFixed(0)
          } MiB/s both directions)`,
        );
      } finally {
        closeQuietly(tls);
      }
    } finally {
      await serve?.stop();
      await api.close();
      await web.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
