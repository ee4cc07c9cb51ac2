/**
 * A `tls` listener with `settings.workers: 2` through the real CLI: both workers route by
 * server name to the route pools, `/pools` shows each route's pool with the connections
 * summed over the workers, and a reload changes the routes in every worker.
 */
import assert from "node:assert/strict";
import { ServeProcess } from "./reliability/_harness.ts";
import { buildClientHello } from "../src/proxy/tls/_test_hello.ts";
import { closeQuietly, freePort, startNamed, WAIT_MS, writeAll } from "./_helpers.ts";

function config(admin: number, port: number, routes: string): string {
  return `settings:
  adminAddress: "127.0.0.1:${admin}"
  logLevel: warning
  workers: 2
configurations:
  - name: edge
    listenerAddress: "127.0.0.1:${port}"
    protocol: tls
    healthCheck: { enabled: false }
    tls:
      routes:
${routes}`;
}

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

interface PoolRow {
  readonly name: string;
  readonly backends: { key: string; connections?: number }[];
}

Deno.test("workers: tls routes are pools in every worker, summed on /pools, reloaded", async () => {
  await using a = startNamed("AAA");
  await using b = startNamed("BBB");
  const admin = freePort();
  const port = freePort();
  const routes = `        - { name: a, hosts: [a.example.com], backends: ["127.0.0.1:${a.port}"] }
        - { name: b, hosts: ["*.example.org"], backends: ["127.0.0.1:${b.port}"] }
`;
  const serve = await ServeProcess.start(config(admin, port, routes), admin);
  try {
    // Enough connections that both workers take some (the kernel spreads them).
    for (let i = 0; i < 40; i++) {
      assert.equal(
        await greeting(port, i % 2 === 0 ? "a.example.com" : "x.example.org"),
        i % 2 === 0 ? "AAA" : "BBB",
      );
    }
    const until = Date.now() + WAIT_MS;
    let pools: PoolRow[] = [];
    while (Date.now() < until) {
      pools = (JSON.parse(await serve.admin("/pools")) as { pools: PoolRow[] }).pools;
      const total = pools.map((p) => p.backends[0]?.connections ?? 0);
      if (total[0] === 20 && total[1] === 20) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(
      pools.map((p) => [p.name, p.backends[0]?.connections]),
      [["edge/a", 20], ["edge/b", 20]],
    );

    // Both workers took some of them (the kernel spreads connections over SO_REUSEPORT).
    const metrics = await serve.admin("/metrics");
    const accepted = metrics.split("\n")
      .filter((l) => l.startsWith("nautiluslb_worker_connections_accepted_total{"))
      .map((l) => Number(l.slice(l.lastIndexOf(" ") + 1)));
    assert.equal(accepted.length, 2, metrics);
    assert.ok(accepted.every((n) => n > 0), `both workers accepted: ${accepted}`);

    // A reload: route b goes, route c takes its hosts; every worker follows.
    const next = `        - { name: a, hosts: [a.example.com], backends: ["127.0.0.1:${a.port}"] }
        - { name: c, hosts: ["**.example.org"], backends: ["127.0.0.1:${a.port}"] }
`;
    await Deno.writeTextFile(`${serve.dir}/config.yaml`, config(admin, port, next));
    serve.kill("SIGHUP");
    const reloaded = Date.now() + WAIT_MS;
    let answers: string[] = [];
    while (Date.now() < reloaded) {
      answers = [];
      for (let i = 0; i < 10; i++) answers.push(await greeting(port, "x.y.example.org"));
      if (answers.every((x) => x === "AAA")) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(answers, new Array(10).fill("AAA"), serve.output);
    const after = (JSON.parse(await serve.admin("/pools")) as { pools: PoolRow[] }).pools;
    assert.deepEqual(after.map((p) => p.name), ["edge/a", "edge/c"]);
  } finally {
    await serve.stop();
  }
});
