/**
 * Config hot reload through the real CLI: SIGHUP and `--watch-config` (a ConfigMap-style
 * `..data` symlink swap) change listeners while other listeners stream data; an invalid file
 * is refused and traffic goes on.
 */
import assert from "node:assert/strict";
import {
  closeQuietly,
  connect,
  delay,
  freePort,
  isClosedWithin,
  randomBytes,
  readAll,
  readName,
  sha256Hex,
  startEcho,
  startNamed,
  writeAll,
} from "./_helpers.ts";
import { metric, spawnServe, waitReady } from "./_serve_process.ts";

interface Listener {
  readonly name: string;
  readonly port: number;
  readonly backend: number;
  readonly extra?: string;
}

function configText(admin: number, listeners: readonly Listener[], extra = ""): string {
  return `settings:
  adminAddress: "127.0.0.1:${admin}"
  logLevel: info
${extra}configurations:
${
    listeners.map((l) =>
      `  - name: ${l.name}
    listenerAddress: "127.0.0.1:${l.port}"
    drainTimeout: 5s
    healthCheck: { enabled: false }
    backends: ["127.0.0.1:${l.backend}"]
${l.extra ?? ""}`
    ).join("")
  }`;
}

/** Whether `127.0.0.1:port` greets with `name` (a named backend behind the listener). */
async function answers(port: number, name: string): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    return await readName(conn, name.length) === name;
  } catch {
    return false;
  } finally {
    if (conn !== undefined) closeQuietly(conn);
  }
}

/** Polls until `port` greets with `name`; the milliseconds it took, or -1 after `ms`. */
async function timeUntilAnswer(port: number, name: string, ms: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    if (await answers(port, name)) return performance.now() - t0;
    await delay(10);
  }
  return -1;
}

/**
 * Sends `chunks` × `chunkBytes` random bytes through an echo, pausing between chunks, and
 * reads everything back; true when the checksums match.
 */
async function streamThrough(port: number, chunks: number, chunkBytes: number, pauseMs: number) {
  const conn = await connect(port);
  try {
    const sent = randomBytes(chunks * chunkBytes);
    const reading = readAll(conn);
    for (let i = 0; i < chunks; i++) {
      await writeAll(conn, sent.subarray(i * chunkBytes, (i + 1) * chunkBytes));
      await delay(pauseMs);
    }
    await conn.closeWrite();
    const got = await reading;
    return {
      sent: sent.length,
      got: got.length,
      equal: await sha256Hex(sent) === await sha256Hex(got),
    };
  } finally {
    closeQuietly(conn);
  }
}

Deno.test("SIGHUP adds, changes and removes listeners while 50 streams on another run on", async () => {
  await using echo = startEcho();
  await using named = startNamed("n");
  await using fresh = startNamed("fresh");
  const admin = freePort();
  const stream: Listener = { name: "stream", port: freePort(), backend: echo.port };
  const web: Listener = { name: "web", port: freePort(), backend: named.port };
  const old: Listener = { name: "old", port: freePort(), backend: named.port };
  const added: Listener = { name: "added", port: freePort(), backend: fresh.port };
  const dir = await Deno.makeTempDir();
  const path = `${dir}/config.yaml`;
  await Deno.writeTextFile(path, configText(admin, [stream, web, old]));
  const serve = spawnServe(path, admin);
  try {
    await waitReady(serve);
    const before = await serve.metrics();
    assert.equal(metric(before, 'nautiluslb_config_reloads_total{result="success"}'), 0);
    const streams = Array.from({ length: 50 }, () => streamThrough(stream.port, 40, 8 * 1024, 50));
    await delay(500);
    await Deno.writeTextFile(
      path,
      configText(admin, [stream, { ...web, extra: "    idleTimeout: 30s\n" }, added]),
    );
    serve.child.kill("SIGHUP");
    const took = await timeUntilAnswer(added.port, "fresh", 5_000);
    assert.ok(took >= 0, `the new listener never answered:\n${serve.stderr()}`);
    assert.ok(took < 1_000, `the new listener answered after ${took.toFixed(0)}ms`);
    assert.ok(await answers(web.port, "n"), "the changed listener still answers");
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: old.port }));
    const results = await Promise.all(streams);
    assert.equal(results.filter((r) => r.equal).length, 50, JSON.stringify(results.slice(0, 3)));
    assert.ok(results.every((r) => r.got === r.sent));
    assert.match(
      serve.stderr(),
      /Reloaded .*config\.yaml: \+1 listener \(added\), -1 \(old\), ~1 changed \(web: idleTimeout\)/,
    );
    const after = await serve.metrics();
    assert.equal(metric(after, 'nautiluslb_config_reloads_total{result="success"}'), 1);
    const sha = await sha256Hex(await Deno.readFile(path));
    assert.equal(metric(after, `nautiluslb_config_info{sha256="${sha}"}`), 1);
    console.log(`new listener answered ${took.toFixed(0)}ms after SIGHUP; 50/50 streams intact`);
  } finally {
    await serve.kill();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGHUP with an invalid file logs every problem with FILE:LINE:COLUMN and keeps serving", async () => {
  await using named = startNamed("n");
  const admin = freePort();
  const web: Listener = { name: "web", port: freePort(), backend: named.port };
  const dir = await Deno.makeTempDir();
  const path = `${dir}/config.yaml`;
  const good = configText(admin, [web]);
  await Deno.writeTextFile(path, good);
  const serve = spawnServe(path, admin);
  try {
    await waitReady(serve);
    const sha = await sha256Hex(new TextEncoder().encode(good));
    await Deno.writeTextFile(
      path,
      good.replace(`127.0.0.1:${web.port}`, "127.0.0.1:70000").replace(
        "logLevel: info",
        "logLevel: loud",
      ),
    );
    serve.child.kill("SIGHUP");
    const deadline = performance.now() + 10_000;
    let text = "";
    while (performance.now() < deadline) {
      text = await serve.metrics();
      if (metric(text, 'nautiluslb_config_reloads_total{result="failure"}') === 1) break;
      await delay(50);
    }
    assert.equal(metric(text, 'nautiluslb_config_reloads_total{result="failure"}'), 1);
    assert.equal(metric(text, 'nautiluslb_config_reloads_total{result="success"}'), 0);
    assert.equal(metric(text, `nautiluslb_config_info{sha256="${sha}"}`), 1, "running hash kept");
    const log = serve.stderr();
    assert.match(log, /Cannot reload .*config\.yaml: 2 problem\(s\), keeping the running config/);
    assert.match(log, /config\.yaml:3:\d+: settings\.logLevel: /);
    assert.match(log, /config\.yaml:\d+:\d+: configurations\[0\]\.listenerAddress: /);
    assert.ok(await answers(web.port, "n"), "traffic goes on");
  } finally {
    await serve.kill();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--watch-config follows a ConfigMap-style ..data symlink swap", async () => {
  await using named = startNamed("n");
  await using fresh = startNamed("fresh");
  const admin = freePort();
  const web: Listener = { name: "web", port: freePort(), backend: named.port };
  const added: Listener = { name: "added", port: freePort(), backend: fresh.port };
  const dir = await Deno.makeTempDir();
  // The layout kubelet writes: config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>.
  await Deno.mkdir(`${dir}/..2026_01_01_a`);
  await Deno.writeTextFile(`${dir}/..2026_01_01_a/config.yaml`, configText(admin, [web]));
  await Deno.symlink("..2026_01_01_a", `${dir}/..data`);
  await Deno.symlink("..data/config.yaml", `${dir}/config.yaml`);
  const serve = spawnServe(`${dir}/config.yaml`, admin, { args: ["--watch-config"] });
  try {
    await waitReady(serve);
    await Deno.mkdir(`${dir}/..2026_01_01_b`);
    await Deno.writeTextFile(`${dir}/..2026_01_01_b/config.yaml`, configText(admin, [web, added]));
    await Deno.symlink("..2026_01_01_b", `${dir}/..data_tmp`);
    await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`);
    await Deno.remove(`${dir}/..2026_01_01_a`, { recursive: true });
    const took = await timeUntilAnswer(added.port, "fresh", 10_000);
    assert.ok(took >= 0, `no reload after the swap:\n${serve.stderr()}`);
    assert.ok(await answers(web.port, "n"));
    const text = await serve.metrics();
    assert.equal(metric(text, 'nautiluslb_config_reloads_total{result="success"}'), 1);
    console.log(`the new listener answered ${took.toFixed(0)}ms after the ..data swap`);
  } finally {
    await serve.kill();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGHUP with workers: 2 adds a listener that answers and an idle timeout every worker applies", async () => {
  await using echo = startEcho();
  await using fresh = startNamed("fresh");
  const admin = freePort();
  const web: Listener = { name: "web", port: freePort(), backend: echo.port };
  const added: Listener = { name: "added", port: freePort(), backend: fresh.port };
  const dir = await Deno.makeTempDir();
  const path = `${dir}/config.yaml`;
  await Deno.writeTextFile(path, configText(admin, [web], "  workers: 2\n"));
  const serve = spawnServe(path, admin);
  const held: Deno.TcpConn[] = [];
  try {
    await waitReady(serve);
    const accepted = async () => {
      const text = await serve.metrics();
      return [0, 1].map((w) =>
        metric(text, `nautiluslb_worker_connections_accepted_total{worker="${w}"}`) ?? 0
      );
    };
    await Deno.writeTextFile(
      path,
      configText(
        admin,
        [{ ...web, extra: "    idleTimeout: 1s\n" }, added],
        "  workers: 3\n",
      ),
    );
    serve.child.kill("SIGHUP");
    const took = await timeUntilAnswer(added.port, "fresh", 5_000);
    assert.ok(took >= 0, `the new listener never answered:\n${serve.stderr()}`);
    // Every worker binds the new listener: many connections all answer.
    for (let i = 0; i < 20; i++) assert.ok(await answers(added.port, "fresh"), `connection ${i}`);
    // Workers report every 250 ms: let the counts settle before and after.
    await delay(700);
    const before = await accepted();
    for (let i = 0; i < 16; i++) held.push(await connect(web.port));
    let after = before;
    for (let i = 0; i < 100 && after[0]! + after[1]! < before[0]! + before[1]! + 16; i++) {
      await delay(50);
      after = await accepted();
    }
    await delay(700);
    after = await accepted();
    assert.ok(
      after.every((n, i) => n > before[i]!),
      `both workers took held connections: ${before} -> ${after}`,
    );
    const closed = await Promise.all(held.map((c) => isClosedWithin(c, 6_000)));
    assert.equal(closed.filter((x) => x).length, 16, "the 1s idle timeout closed every one");
    assert.match(serve.stderr(), /Reloaded .*config\.yaml: \+1 listener \(added\)/);
    assert.match(serve.stderr(), /Settings workers of .* take effect at the next start/);
    console.log(`new listener answered ${took.toFixed(0)}ms after SIGHUP with 2 workers`);
  } finally {
    for (const c of held) closeQuietly(c);
    await serve.kill();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGHUP moves the admin server to a new adminAddress; a taken one is refused and the old serves on", async () => {
  await using named = startNamed("n");
  const [first, second] = [freePort(), freePort()];
  const web: Listener = { name: "web", port: freePort(), backend: named.port };
  const dir = await Deno.makeTempDir();
  const path = `${dir}/config.yaml`;
  await Deno.writeTextFile(path, configText(first, [web]));
  const serve = spawnServe(path, first);
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const status = async (port: number, route: string): Promise<number> => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${route}`);
      await res.body?.cancel();
      return res.status;
    } catch {
      return 0;
    }
  };
  try {
    await waitReady(serve);
    await Deno.writeTextFile(path, configText(second, [web]));
    serve.child.kill("SIGHUP");
    const deadline = performance.now() + 10_000;
    while (performance.now() < deadline && await status(second, "/readyz") !== 200) await delay(20);
    assert.equal(
      await status(second, "/readyz"),
      200,
      `not on the new address:\n${serve.stderr()}`,
    );
    assert.equal(await status(first, "/healthz"), 0, "the old address is closed");
    assert.match(serve.stderr(), /Reloaded .*config\.yaml: .*settings: adminAddress/);
    assert.doesNotMatch(serve.stderr(), /adminAddress of .* take effect at the next start/);

    await Deno.writeTextFile(path, configText(taken.addr.port, [web]));
    serve.child.kill("SIGHUP");
    const failures = async () => {
      const res = await fetch(`http://127.0.0.1:${second}/metrics`);
      return metric(await res.text(), 'nautiluslb_config_reloads_total{result="failure"}');
    };
    const until = performance.now() + 10_000;
    while (performance.now() < until && await failures() !== 1) await delay(20);
    assert.equal(await failures(), 1, `the reload was not refused:\n${serve.stderr()}`);
    assert.match(
      serve.stderr(),
      new RegExp(
        `Cannot reload .*config\\.yaml, keeping the running config: Cannot start admin server on 127\\.0\\.0\\.1:${taken.addr.port}: .*in use`,
      ),
    );
    assert.equal(await status(second, "/healthz"), 200, "the running admin server serves on");
    assert.ok(await answers(web.port, "n"), "traffic goes on");
  } finally {
    taken.close();
    await serve.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
