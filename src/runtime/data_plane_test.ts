import assert from "node:assert/strict";
import { getLogger, resetLogging, setupLogging } from "../log/mod.ts";
import { backendsOf } from "../core/plan.ts";
import { DataPlane } from "./data_plane.ts";
import {
  closedPort,
  listenerSpec,
  nameVia,
  planOf,
  startEcho,
  startNamed,
  waitFor,
} from "./_test_backend.ts";

function address(plane: DataPlane, name: string): string {
  const found = plane.snapshot().find((l) => l.name === name);
  assert.ok(found, `listener ${name}`);
  return found.address;
}

Deno.test("DataPlane keeps listeners apart by name: one removed, the other serves on", async () => {
  const a = startNamed("a");
  const b = startNamed("b");
  const plane = new DataPlane();
  try {
    plane.add(listenerSpec("one"));
    plane.add(listenerSpec("two"));
    assert.throws(() => plane.add(listenerSpec("one")), TypeError);
    plane.setBackends("one", backendsOf(planOf("one", [a.port])));
    plane.setBackends("two", backendsOf(planOf("two", [b.port])));
    plane.setBackends("gone", backendsOf(planOf("gone", [a.port]))); // ignored
    plane.start();
    const one = address(plane, "one");
    const two = address(plane, "two");
    assert.equal(await nameVia(one), "a");
    assert.equal(await nameVia(two), "b");

    assert.equal(await plane.remove("one"), 0);
    assert.deepEqual(plane.names, ["two"]);
    await assert.rejects(nameVia(one), Deno.errors.ConnectionRefused);
    assert.equal(await nameVia(two), "b");
    assert.equal(await plane.remove("one"), 0, "unknown name");
  } finally {
    await plane.stop();
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("DataPlane applies health verdicts and reports connect outcomes as plain data", async () => {
  const a = startNamed("a");
  const dead = closedPort();
  const reports: string[] = [];
  const plane = new DataPlane({
    onConnectResult: (pool, key, ok, error) =>
      reports.push(`${pool} ${key} ${ok}${error === undefined ? "" : ` ${typeof error}`}`),
  });
  try {
    plane.add(listenerSpec("web", { maxConnectAttempts: 1 }));
    plane.setBackends("web", backendsOf(planOf("web", [a.port, dead])));
    plane.start();
    const web = address(plane, "web");
    const deadKey = `127.0.0.1:${dead}`;
    plane.setHealth("web", a.key, "unhealthy");
    // Only the dead backend is eligible, one attempt: the client is closed without a byte.
    assert.equal(await nameVia(web), "");
    assert.deepEqual(reports, [`web ${deadKey} false string`]);
    plane.setHealth("web", a.key, "healthy");
    plane.setHealth("web", deadKey, "unhealthy");
    plane.setHealth("other", a.key, "unhealthy"); // ignored
    assert.equal(await nameVia(web), "a");
    assert.deepEqual(reports.at(-1), `web ${a.key} true`);
    const [snapshot] = plane.snapshot();
    assert.deepEqual(
      snapshot!.pool.backends.map((r) => [r.key, r.health]).sort(),
      [[a.key, "healthy"], [deadKey, "unhealthy"]].sort(),
    );
    assert.equal(snapshot!.stats.connectFailures, 1);
  } finally {
    await plane.stop();
    await a.close();
  }
});

Deno.test("DataPlane refuses to accept PROXY protocol without trusted peers and binds nothing", async () => {
  const plane = new DataPlane();
  try {
    for (const trustedProxies of [undefined, [], ["10.0.0.1/8"]]) {
      assert.throws(
        () => plane.add(listenerSpec("pp", { acceptProxyProtocol: true, trustedProxies })),
        RangeError,
      );
    }
    assert.deepEqual(plane.names, []);
    plane.add(listenerSpec("pp", { acceptProxyProtocol: true, trustedProxies: ["127.0.0.0/8"] }));
    assert.deepEqual(plane.names, ["pp"]);
  } finally {
    await plane.stop();
  }
});

Deno.test("DataPlane hands accessLog and maxConnectionsPerBackend to its listeners", async () => {
  const lines: string[] = [];
  await setupLogging({ level: "error", format: "json", write: (line) => lines.push(line) });
  const a = startNamed("a");
  const plane = new DataPlane({ accessLogger: getLogger("access") });
  try {
    plane.add(listenerSpec("logged", { accessLog: true, maxConnectionsPerBackend: 7 }));
    plane.add(listenerSpec("quiet"));
    const plan = planOf("logged", [a.port]);
    plane.setBackends(
      "logged",
      backendsOf({
        ...plan,
        backends: plan.backends.map((b) => ({ ...b, maxConnections: 3 })),
      }),
    );
    plane.setBackends("quiet", backendsOf(planOf("quiet", [a.port])));
    plane.start();
    assert.equal(await nameVia(address(plane, "logged")), "a");
    assert.equal(await nameVia(address(plane, "quiet")), "a");
    const snapshot = plane.snapshot();
    assert.deepEqual(snapshot.map((l) => l.pool.backends[0]!.maxConnections), [3, 0]);
    const deadline = performance.now() + 5_000;
    while (lines.length === 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 50));
    const listeners = lines.map((l) => JSON.parse(l).properties.listener);
    assert.deepEqual(listeners, ["logged"]);
  } finally {
    await plane.stop();
    await a.close();
    await resetLogging();
  }
});

async function echoOnce(conn: Deno.Conn, text: string): Promise<string> {
  await conn.write(new TextEncoder().encode(text));
  const buffer = new Uint8Array(64);
  const n = await conn.read(buffer);
  return n === null ? "" : new TextDecoder().decode(buffer.subarray(0, n));
}

Deno.test("DataPlane.update applies to new connections; open ones, socket and health stay", async () => {
  const echo = startEcho();
  const a = startNamed("a");
  const plane = new DataPlane();
  const clients: Deno.Conn[] = [];
  try {
    const spec = listenerSpec("web", { idleTimeoutMs: 0 });
    const addr = plane.add(spec);
    plane.setBackends("web", backendsOf(planOf("web", [echo.port, a.port])));
    plane.setHealth("web", a.key, "unhealthy");
    plane.start();
    const connect = async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: addr.port });
      clients.push(conn);
      return conn;
    };
    const before = await connect();
    assert.equal(await echoOnce(before, "one"), "one");

    const updated = { ...spec, idleTimeoutMs: 200, maxConnections: 2 };
    assert.throws(() => plane.update("web", { ...updated, port: 1 }), TypeError);
    plane.update("web", updated);
    plane.update("gone", updated); // ignored
    const [row] = plane.snapshot();
    assert.equal(row!.address, `127.0.0.1:${addr.port}`);
    assert.equal(row!.pool.backends.find((b) => b.key === a.key)?.health, "unhealthy");

    const after = await connect();
    assert.equal(await echoOnce(after, "two"), "two");
    // The new idle timeout closes the new connection; the one accepted before keeps going.
    await waitFor(() => row!.stats.idleTimeouts === 1, 3_000, "idle timeout of the new one");
    assert.equal(await after.read(new Uint8Array(8)), null);
    assert.equal(await echoOnce(before, "three"), "three");

    // maxConnections 2 counts the open connection accepted before the update.
    const second = await connect();
    assert.equal(await echoOnce(second, "four"), "four");
    const third = await connect();
    assert.equal(await third.read(new Uint8Array(8)), null, "over the new limit");
    assert.equal(row!.stats.refused, 1);
  } finally {
    for (const conn of clients) {
      try {
        conn.close();
      } catch {
        // closed already
      }
    }
    await plane.stop(0);
    await Promise.all([echo.close(), a.close()]);
  }
});

Deno.test("DataPlane.update swaps the balancer for the next pick", async () => {
  const a = startNamed("a");
  const b = startNamed("b");
  const plane = new DataPlane();
  try {
    const spec = listenerSpec("web");
    const addr = plane.add(spec);
    plane.setBackends("web", backendsOf(planOf("web", [a.port, b.port])));
    plane.start();
    const at = `127.0.0.1:${addr.port}`;
    const rr = [await nameVia(at), await nameVia(at), await nameVia(at), await nameVia(at)];
    assert.equal(new Set(rr).size, 2, "round robin uses both");
    assert.equal(plane.snapshot()[0]!.fingerprint, undefined);
    plane.update("web", { ...spec, balancer: "maglev", maglevTableSize: 251 });
    assert.equal(typeof plane.snapshot()[0]!.fingerprint, "string", "maglev has a fingerprint");
    // One client address: Maglev sends every connection to the same backend.
    const maglev = [await nameVia(at), await nameVia(at), await nameVia(at)];
    assert.equal(new Set(maglev).size, 1);
  } finally {
    await plane.stop(0);
    await Promise.all([a.close(), b.close()]);
  }
});
