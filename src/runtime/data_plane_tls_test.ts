import assert from "node:assert/strict";
import { backendsOf } from "../core/plan.ts";
import { DataPlane } from "./data_plane.ts";
import { listenerSpec, planOf, startNamed } from "./_test_backend.ts";
import type { TlsSpec } from "../core/listener_spec.ts";
import { buildClientHello } from "../proxy/tls/_test_hello.ts";

function tls(routes: { name: string; hosts: string[] }[], defaultRoute?: string): TlsSpec {
  return {
    routes: routes.map((r) => ({ ...r, backends: [] })),
    ...(defaultRoute !== undefined && { defaultRoute }),
    peekTimeoutMs: 2_000,
    maxClientHelloBytes: 16_384,
  };
}

/** Sends a ClientHello for `serverName` and reads the backend's name, or `closed`. */
async function nameFor(address: string, serverName: string): Promise<string> {
  const [hostname, port] = [
    address.slice(0, address.lastIndexOf(":")),
    address.slice(address.lastIndexOf(":") + 1),
  ];
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    await conn.write(buildClientHello({ serverName }));
    const buffer = new Uint8Array(16);
    const n = await conn.read(buffer).catch(() => null);
    return n === null ? "closed" : new TextDecoder().decode(buffer.subarray(0, n));
  } finally {
    conn.close();
  }
}

Deno.test("DataPlane: a tls listener's routes are pools fed by name, changed in place", async () => {
  const a = startNamed("a");
  const b = startNamed("b");
  const c = startNamed("c");
  const plane = new DataPlane();
  try {
    plane.add(listenerSpec("edge", {
      protocol: "tls",
      tls: tls([{ name: "api", hosts: ["api.example.com"] }, {
        name: "web",
        hosts: ["*.example.com"],
      }]),
    }));
    plane.setBackends("edge/api", backendsOf(planOf("edge/api", [a.port])));
    plane.setBackends("edge/web", backendsOf(planOf("edge/web", [b.port])));
    plane.setBackends("edge", backendsOf(planOf("edge", [c.port]))); // no such pool: ignored
    plane.start();
    const [snapshot] = plane.snapshot();
    assert.deepEqual(snapshot!.pools?.map((p) => p.pool.name), ["edge/api", "edge/web"]);
    const address = snapshot!.address;
    assert.equal(await nameFor(address, "api.example.com"), "a");
    assert.equal(await nameFor(address, "www.example.com"), "b");
    assert.equal(await nameFor(address, "other.test"), "closed");

    // Reload: web goes, new route "rest" is the default; the socket stays.
    plane.update(
      "edge",
      listenerSpec("edge", {
        protocol: "tls",
        tls: tls(
          [{ name: "api", hosts: ["api.example.com"] }, { name: "rest", hosts: [] }],
          "rest",
        ),
      }),
    );
    plane.setBackends("edge/rest", backendsOf(planOf("edge/rest", [c.port])));
    const after = plane.snapshot()[0]!;
    assert.equal(after.address, address);
    assert.deepEqual(after.pools?.map((p) => p.pool.name), ["edge/api", "edge/rest"]);
    assert.equal(await nameFor(address, "api.example.com"), "a");
    assert.equal(await nameFor(address, "www.example.com"), "c");
    assert.equal(await nameFor(address, "other.test"), "c");
    // The api pool kept its backend and counters across the reload.
    const api = plane.snapshot()[0]!.pools!.find((p) => p.pool.name === "edge/api")!;
    assert.equal(api.pool.backends[0]?.counters?.connections, 2);
    plane.setHealth("edge/api", `127.0.0.1:${a.port}`, "unhealthy");
    assert.equal(await nameFor(address, "api.example.com"), "closed");
    assert.equal(plane.snapshot()[0]!.stats.refusedByCause.tls_no_route, 1);
  } finally {
    await plane.stop();
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

Deno.test("DataPlane: tls route pools balance by Maglev on the client address", async () => {
  const backends = ["a", "b", "c"].map((n) => startNamed(n));
  const plane = new DataPlane();
  try {
    plane.add(listenerSpec("edge", {
      protocol: "tls",
      balancer: "maglev",
      tls: tls([{ name: "api", hosts: ["api.example.com"] }, {
        name: "web",
        hosts: ["*.example.com"],
      }]),
    }));
    const ports = backends.map((b) => b.port);
    plane.setBackends("edge/api", backendsOf(planOf("edge/api", ports)));
    plane.setBackends("edge/web", backendsOf(planOf("edge/web", ports)));
    plane.start();
    const [snapshot] = plane.snapshot();
    // Each route pool builds its own Maglev table from the same backends: same fingerprint.
    const prints = snapshot!.pools!.map((p) => p.fingerprint);
    assert.match(prints[0] ?? "", /^[0-9a-f]{16}$/);
    assert.equal(prints[0], prints[1]);
    // One client address (127.0.0.1) always lands on the same backend, whatever its port.
    const names = new Set<string>();
    for (let i = 0; i < 6; i++) names.add(await nameFor(snapshot!.address, "api.example.com"));
    assert.equal(names.size, 1, [...names].join(","));
  } finally {
    await plane.stop();
    await Promise.all(backends.map((b) => b.close()));
  }
});
