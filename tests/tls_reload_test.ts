/**
 * Reloading a `tls` listener's routes through the real CLI (SIGHUP): routes are added,
 * changed and removed in place; the socket stays, and a connection open on a route that
 * stays keeps streaming.
 */
import assert from "node:assert/strict";
import { ServeProcess } from "./reliability/_harness.ts";
import { buildClientHello } from "../src/proxy/tls/_test_hello.ts";
import { closeQuietly, freePort, startEcho, startNamed, WAIT_MS, writeAll } from "./_helpers.ts";

function config(admin: number, port: number, routes: string): string {
  return `settings:
  adminAddress: "127.0.0.1:${admin}"
  logLevel: info
configurations:
  - name: edge
    listenerAddress: "127.0.0.1:${port}"
    protocol: tls
    healthCheck: { enabled: false }
    tls:
      peekTimeout: 2s
      routes:
${routes}`;
}

/** The first bytes a backend sends for a hello naming `serverName`; `closed` when none. */
async function greeting(port: number, serverName: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeAll(conn, buildClientHello({ serverName }));
    const buffer = new Uint8Array(16);
    const n = await conn.read(buffer).catch(() => null);
    return n === null ? "closed" : new TextDecoder().decode(buffer.subarray(0, n));
  } finally {
    closeQuietly(conn);
  }
}

async function eventually(probe: () => Promise<boolean>, what: () => string): Promise<void> {
  const until = Date.now() + WAIT_MS;
  while (Date.now() < until) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`Timed out waiting for ${what()}`);
}

Deno.test("SIGHUP changes a tls listener's routes in place; open connections go on", async () => {
  await using echo = startEcho();
  await using a = startNamed("AAA");
  await using b = startNamed("BBB");
  const admin = freePort();
  const port = freePort();
  const before =
    `        - { name: echo, hosts: [echo.example.com], backends: ["127.0.0.1:${echo.port}"] }
        - { name: a, hosts: ["*.example.com"], backends: ["127.0.0.1:${a.port}"] }
`;
  const after =
    `        - { name: echo, hosts: [echo.example.com], backends: ["127.0.0.1:${echo.port}"] }
        - { name: b, hosts: ["*.example.com", "**.example.org"], backends: ["127.0.0.1:${b.port}"] }
`;
  const serve = await ServeProcess.start(config(admin, port, before), admin);
  const open = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    assert.equal(await greeting(port, "www.example.com"), "AAA");
    assert.equal(await greeting(port, "x.y.example.org"), "closed");
    // A connection on the echo route, open across the reload.
    const hello = buildClientHello({ serverName: "echo.example.com" });
    await writeAll(open, hello);
    const echoed = new Uint8Array(hello.length);
    let got = 0;
    while (got < hello.length) got += (await open.read(echoed.subarray(got)))!;
    assert.deepEqual(echoed, hello);

    await Deno.writeTextFile(`${serve.dir}/config.yaml`, config(admin, port, after));
    serve.kill("SIGHUP");
    await eventually(
      async () => (await greeting(port, "www.example.com")) === "BBB",
      () => `route b: ${serve.output}`,
    );
    assert.equal(await greeting(port, "x.y.example.org"), "BBB");
    const pools = JSON.parse(await serve.admin("/pools")) as { pools: { name: string }[] };
    assert.deepEqual(pools.pools.map((p) => p.name).sort(), ["edge/b", "edge/echo"]);

    // The old connection still streams through the route that stayed.
    const more = new TextEncoder().encode("after the reload");
    await writeAll(open, more);
    const back = new Uint8Array(more.length);
    got = 0;
    while (got < more.length) got += (await open.read(back.subarray(got)))!;
    assert.deepEqual(back, more);
  } finally {
    closeQuietly(open);
    await serve.stop();
  }
});
