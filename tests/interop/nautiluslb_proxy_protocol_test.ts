/**
 * PROXY protocol through a running NautilusLB (`serve`) with real peers on loopback:
 * - nginx (`listen … proxy_protocol`) behind listeners with `proxyProtocol: v1` and `v2`
 *   logs the real client's address, and its error log shows no broken header from the
 *   active health checks (which send `PROXY UNKNOWN` / v2 `LOCAL`);
 * - HAProxy (`send-proxy-v2`) in front of a listener with `acceptProxyProtocol: true`: the
 *   original client's address travels on to nginx.
 *
 * The client binds 127.0.0.5, so its address differs from the one NautilusLB and HAProxy
 * connect from (127.0.0.1). Needs nginx and HAProxy (`bash scripts/interop_install.sh`).
 */
import assert from "node:assert/strict";
import * as net from "node:net";
import { ServeProcess } from "../reliability/_harness.ts";
import { findExecutable, PEER_HOST, startHaproxy, startNginx } from "./_peers.ts";

const WAIT_MS = 10_000;
const CLIENT_HOST = "127.0.0.5";
const hasNginx = findExecutable("nginx") !== undefined;
const hasHaproxy = findExecutable("haproxy") !== undefined;
if (Deno.env.get("NAUTILUS_INTEROP_REQUIRED") === "1" && !(hasNginx && hasHaproxy)) {
  throw new Error(
    "Cannot run the interop tests: nginx and haproxy are required (bash scripts/interop_install.sh)",
  );
}

function freePort(): number {
  const listener = Deno.listen({ hostname: PEER_HOST, port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/**
 * Sends one HTTP/1.0 request to `port` from {@linkcode CLIENT_HOST}.
 * @returns the client's source port and the whole answer
 */
function request(port: number, path: string): Promise<{ clientPort: number; answer: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: PEER_HOST, port, localAddress: CLIENT_HOST });
    let answer = "";
    let clientPort = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`No answer from port ${port} within ${WAIT_MS}ms`));
    }, WAIT_MS);
    socket.setEncoding("utf8");
    socket.on("connect", () => {
      clientPort = socket.localPort ?? 0;
      socket.write(`GET ${path} HTTP/1.0\r\nHost: interop\r\n\r\n`);
    });
    socket.on("data", (chunk) => answer += chunk);
    socket.on("error", (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ clientPort, answer });
    });
  });
}

async function waitFor<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

Deno.test({
  name: "interop: nginx behind NautilusLB logs the client address; HAProxy in front passes it on",
  ignore: !(hasNginx && hasHaproxy),
  async fn() {
    const nginx = await startNginx();
    const adminPort = freePort();
    const ports = { v1: freePort(), v2: freePort(), accept: freePort() };
    const haproxy = await startHaproxy({ backendPort: ports.accept, version: "v2" });
    const backend = `"${PEER_HOST}:${nginx.port}"`;
    const checks = "healthCheck: { interval: 200ms, timeout: 150ms, rise: 1, fall: 1 }";
    const config = `
settings:
  adminAddress: "127.0.0.1:${adminPort}"
  logLevel: warning
configurations:
  - name: pp_v1
    listenerAddress: "${PEER_HOST}:${ports.v1}"
    backends: [${backend}]
    proxyProtocol: v1
    ${checks}
  - name: pp_v2
    listenerAddress: "${PEER_HOST}:${ports.v2}"
    backends: [${backend}]
    proxyProtocol: v2
    ${checks}
  - name: accept
    listenerAddress: "${PEER_HOST}:${ports.accept}"
    backends: [${backend}]
    proxyProtocol: v2
    acceptProxyProtocol: true
    trustedProxies: ["127.0.0.0/8"]
    proxyHeaderTimeout: 2s
    ${checks}
`;
    let serve: ServeProcess | undefined;
    try {
      serve = await ServeProcess.start(config, adminPort);
      const started = Date.now();
      const cases = [
        { port: ports.v1, path: "/through-v1" },
        { port: ports.v2, path: "/through-v2" },
        { port: haproxy.port, path: "/through-haproxy" },
      ];
      for (const { port, path } of cases) {
        const { clientPort, answer } = await request(port, path);
        assert.match(answer, /^HTTP\/1\.1 200 /, `${path}: ${answer}`);
        const expected = `${CLIENT_HOST}:${clientPort} "GET ${path} HTTP/1.0"`;
        await waitFor(
          async () => (await nginx.accessLog()).includes(expected) ? true : undefined,
          `nginx to log ${expected}; log so far:\n${(await nginx.accessLog()).join("\n")}`,
        );
      }
      // Several check intervals of both header kinds (v1 UNKNOWN, v2 LOCAL).
      const elapsed = Date.now() - started;
      if (elapsed < 1500) await new Promise((resolve) => setTimeout(resolve, 1500 - elapsed));
      for (const pool of ["pp_v1", "pp_v2", "accept"]) {
        assert.equal(
          await serve.health(pool, `${PEER_HOST}:${nginx.port}`),
          "healthy",
          `${pool}: ${serve.output}`,
        );
      }
      const errors = await nginx.diagnostics();
      assert.ok(!/broken header/i.test(errors), `nginx error log:\n${errors}`);
      // The checks did reach nginx: each one is a connection that sent a header, no request.
      const checked = errors.split("\n").filter((l) => l.includes("while waiting for request"));
      assert.ok(checked.length >= 6, `few checks reached nginx:\n${errors}`);
      // Every access-log line is a proxied request: health checks make none.
      const log = await nginx.accessLog();
      assert.equal(log.length, cases.length, log.join("\n"));
      assert.equal(
        await serve.metric("nautiluslb_connections_refused_total", {
          cause: "proxy_header",
        }),
        0,
      );
    } finally {
      await serve?.stop();
      await haproxy.stop();
      await nginx.stop();
    }
  },
});

Deno.test({
  name: "interop: a listener accepting PROXY protocol refuses a client that sends none",
  ignore: !hasNginx,
  async fn() {
    const nginx = await startNginx();
    const adminPort = freePort();
    const port = freePort();
    const config = `
settings:
  adminAddress: "127.0.0.1:${adminPort}"
  logLevel: error
configurations:
  - name: accept
    listenerAddress: "${PEER_HOST}:${port}"
    backends: ["${PEER_HOST}:${nginx.port}"]
    proxyProtocol: v1
    acceptProxyProtocol: true
    trustedProxies: ["127.0.0.0/8"]
    healthCheck: { enabled: false }
`;
    let serve: ServeProcess | undefined;
    try {
      serve = await ServeProcess.start(config, adminPort);
      // A plain HTTP request where a PROXY header belongs: closed without an answer.
      const { answer } = await request(port, "/no-header");
      assert.equal(answer, "");
      assert.equal(
        await serve.metric("nautiluslb_connections_refused_total", {
          cause: "proxy_header",
        }),
        1,
      );
      assert.deepEqual(await nginx.accessLog(), []);
    } finally {
      await serve?.stop();
      await nginx.stop();
    }
  },
});
