import assert from "node:assert/strict";
import { type Config, parseConfig } from "../config/mod.ts";
import { healthTargetsOf } from "../resolve/mod.ts";
import { reusePortSupported, Runtime } from "../runtime/mod.ts";
import { resetLogging, setupLogging } from "../log/mod.ts";
import { sha256Hex } from "../core/sha256.ts";
import { ConfigReloader } from "./reloader.ts";
import { type OpenSource, openSource } from "./open_source.ts";

/** Writes its name to every client, then closes. */
function startNamed(name: string): { port: number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const bytes = new TextEncoder().encode(name);
  const loop = (async () => {
    for await (const conn of listener) {
      await conn.write(bytes).catch(() => {});
      conn.close();
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    close: async () => {
      listener.close();
      await loop;
    },
  };
}

async function nameVia(address: string): Promise<string> {
  const [hostname, port] = address.split(":");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    const buffer = new Uint8Array(64);
    const n = await conn.read(buffer);
    return n === null ? "" : new TextDecoder().decode(buffer.subarray(0, n));
  } finally {
    conn.close();
  }
}

function text(port: number, backend: number, extra = ""): string {
  return `settings: { adminAddress: "" }
configurations:
  - name: web
    listenerAddress: "127.0.0.1:${port}"
    healthCheck: { enabled: false }
    backends: ["127.0.0.1:${backend}"]
${extra}`;
}

function parse(source: string, file: string): Config {
  const result = parseConfig(source, file);
  assert.ok(result.ok);
  return result.config;
}

/** A reloader over a temporary config file and the runtime it drives, as `serve` starts them. */
interface Reloading {
  readonly reloader: ConfigReloader;
  readonly runtime: Runtime;
  /** The config file, holding the text the reloader started from. */
  readonly path: string;
  /** Starts `reloader.follow()`; {@linkcode close} waits for it to end. */
  follow(): void;
  /** Stops the runtime and the reloader, aborts the signal, and removes the file's folder. */
  close(): Promise<void>;
}

/**
 * Writes `first` to a new temporary config file, opens its source and starts a reloader and
 * a runtime on it. `openSource` opens the sources of later reloads (the real one by default).
 */
async function startReloading(first: string, options: {
  readonly openSource?: OpenSource;
  readonly admin?: Parameters<typeof Runtime.start>[0]["admin"];
  readonly logFlags?: ConstructorParameters<typeof ConfigReloader>[0]["logFlags"];
  readonly reusePort?: boolean;
} = {}): Promise<Reloading> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/config.yaml`;
  await Deno.writeTextFile(path, first);
  const stop = new AbortController();
  const config = parse(first, path);
  const source = await openSource(config, {}, stop.signal);
  const reloader = new ConfigReloader({
    path,
    config,
    sha256: await sha256Hex(new TextEncoder().encode(first)),
    source,
    sourceOptions: {},
    openSource: options.openSource ?? openSource,
    logFlags: options.logFlags ?? {},
    signal: stop.signal,
  });
  const runtime = await Runtime.start({
    listeners: source.listeners,
    healthTargets: healthTargetsOf,
    discovery: () => ({ source: reloader.source.kind, ...reloader.source.status() }),
    config: () => reloader.status(),
    ...(options.admin === undefined ? {} : { admin: options.admin }),
    ...(options.reusePort === undefined ? {} : { reusePort: options.reusePort }),
  }, source.plans);
  reloader.attach(runtime);
  let following: Promise<void> | undefined;
  return {
    reloader,
    runtime,
    path,
    follow: () => {
      following = reloader.follow();
    },
    close: async () => {
      await runtime.stop(0);
      await reloader.close();
      stop.abort();
      await following;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("ConfigReloader keeps the running pools until the new source has its plans", async () => {
  const a = startNamed("a");
  const b = startNamed("b");
  const port = freePort();
  const first = text(port, a.port);
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => release = resolve);
  let opened = 0;
  // The real source, opened only once the gate opens: a discovery that takes its time.
  const slowOpen: OpenSource = async (next, options, signal) => {
    opened++;
    await gate;
    return await openSource(next, options, signal);
  };
  const { reloader, runtime, path, follow, close } = await startReloading(first, {
    openSource: slowOpen,
  });
  follow();
  const at = `127.0.0.1:${port}`;
  try {
    assert.equal(await nameVia(at), "a");
    assert.equal(reloader.status().sha256, await sha256Hex(new TextEncoder().encode(first)));

    // Same bytes from the file watch: nothing to do, nothing counted.
    assert.equal(await reloader.reload(true), "unchanged");
    assert.equal(reloader.status().reloadsSucceeded, 0);

    const second = text(port, b.port, "    idleTimeout: 30s\n");
    await Deno.writeTextFile(path, second);
    const reloading = reloader.reload();
    while (opened === 0) await new Promise((r) => setTimeout(r, 5));
    // Discovery for the new config is under way: the old pool serves on.
    assert.equal(await nameVia(at), "a");
    assert.equal(runtime.snapshot().pools[0]!.backends.length, 1);
    release();
    assert.equal(await reloading, "applied");
    assert.equal(await nameVia(at), "b");
    assert.equal(runtime.addresses.get("web"), at, "same socket");
    const status = reloader.status();
    assert.equal(status.reloadsSucceeded, 1);
    assert.equal(status.sha256, await sha256Hex(new TextEncoder().encode(second)));

    // Invalid: refused, counted, nothing changes.
    await Deno.writeTextFile(path, second.replace("30s", "soon"));
    assert.equal(await reloader.reload(), "refused");
    assert.equal(reloader.status().reloadsFailed, 1);
    assert.equal(reloader.status().sha256, status.sha256);
    assert.equal(await nameVia(at), "b");

    // Settings only (no new source needed): applied in place.
    await Deno.writeTextFile(path, second.replace("30s", "45s"));
    const opens = opened;
    assert.equal(await reloader.reload(), "applied");
    assert.equal(opened, opens, "in-place changes keep the source");
    assert.equal(reloader.config.configurations[0]!.idleTimeoutMs, 45_000);

    // The status page's recent reloads: what each did, oldest first, one line each.
    const recent = reloader.status().recentReloads ?? [];
    assert.deepEqual(recent.map((r) => r.outcome), ["applied", "refused", "applied"]);
    assert.match(
      recent[1]!.summary,
      /^Cannot reload .*: 1 problem\(s\), keeping the running config$/,
    );
    assert.ok(recent.every((r) => !r.summary.includes("\n") && r.atMs > 0));
  } finally {
    await close();
    await Promise.all([a.close(), b.close()]);
  }
});

/** `/healthz` status on `port`, or 0 when nothing answers there. */
async function healthz(port: number): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    await res.body?.cancel();
    return res.status;
  } catch {
    return 0;
  }
}

function freePort(): number {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = probe.addr;
  probe.close();
  return port;
}

Deno.test("ConfigReloader moves the admin server to a new adminAddress, or turns it off and on", async () => {
  const backend = startNamed("a");
  const port = freePort();
  const withAdmin = (address: string) =>
    text(port, backend.port).replace(`adminAddress: ""`, `adminAddress: "${address}"`);
  const [first, second] = [freePort(), freePort()];
  const { reloader, runtime, path, follow, close } = await startReloading(
    withAdmin(`127.0.0.1:${first}`),
    { admin: { hostname: "127.0.0.1", port: first, address: `127.0.0.1:${first}` } },
  );
  follow();
  // A function, so assertions do not narrow it for the rest of the test.
  const adminAddr = () => runtime.adminAddr;
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    assert.equal(await healthz(first), 200);

    // A new address: served there, the old one closed.
    await Deno.writeTextFile(path, withAdmin(`127.0.0.1:${second}`));
    assert.equal(await reloader.reload(), "applied");
    assert.equal(adminAddr()?.port, second);
    assert.equal(await healthz(second), 200);
    assert.equal(await healthz(first), 0, "the old admin address is closed");
    assert.equal(reloader.config.settings.adminAddress, `127.0.0.1:${second}`);

    // A taken address: refused, the running admin server serves on, nothing else changes.
    await Deno.writeTextFile(
      path,
      withAdmin(`127.0.0.1:${taken.addr.port}`).replace(
        "healthCheck:",
        "idleTimeout: 9s\n    healthCheck:",
      ),
    );
    assert.equal(await reloader.reload(), "refused");
    assert.equal(reloader.status().reloadsFailed, 1);
    assert.equal(await healthz(second), 200, "the running admin server serves on");
    assert.equal(adminAddr()?.port, second);
    assert.equal(reloader.config.settings.adminAddress, `127.0.0.1:${second}`);
    assert.notEqual(reloader.config.configurations[0]!.idleTimeoutMs, 9_000, "nothing applied");

    // "" turns admin off; an address turns it on again.
    await Deno.writeTextFile(path, withAdmin(""));
    assert.equal(await reloader.reload(), "applied");
    assert.equal(adminAddr(), undefined);
    assert.equal(await healthz(second), 0);
    await Deno.writeTextFile(path, withAdmin(`:${first}`));
    assert.equal(await reloader.reload(), "applied");
    assert.deepEqual(
      [adminAddr()?.hostname, adminAddr()?.port],
      ["127.0.0.1", first],
      "a missing host is loopback",
    );
    assert.equal(await healthz(first), 200);
    assert.equal(await nameVia(`127.0.0.1:${port}`), "a", "traffic untouched throughout");
    assert.equal(reloader.status().reloadsSucceeded, 3);
  } finally {
    taken.close();
    await close();
    await backend.close();
  }
});

/** Log records written as JSON lines while `fn` runs. */
async function jsonLogs(fn: (records: () => Record<string, unknown>[]) => Promise<void>) {
  const lines: string[] = [];
  await setupLogging({ level: "info", format: "json", write: (line) => lines.push(line) });
  try {
    await fn(() => lines.map((line) => JSON.parse(line)));
  } finally {
    await resetLogging();
  }
}

Deno.test({
  name:
    "ConfigReloader says what a reload did: accessLog at once, workers at the next start, a refusal with its properties",
  // SO_REUSEPORT lets the rebound listener bind its address again next to the draining one.
  ignore: !reusePortSupported(),
  fn: () =>
    jsonLogs(async (records) => {
      const a = startNamed("a");
      const port = freePort();
      const first = text(port, a.port);
      const { reloader, path, follow, close } = await startReloading(first, { reusePort: true });
      follow();
      const at = `127.0.0.1:${port}`;
      const messages = () => records().map((r) => r.message as string);
      try {
        await Deno.writeTextFile(
          path,
          first.replace('adminAddress: ""', 'adminAddress: "", accessLog: true'),
        );
        assert.equal(await reloader.reload(), "applied");
        assert.ok(messages().includes(`Access log on from now on for listener(s) web of ${path}`));
        assert.ok(!messages().some((m) => m.includes("next start")), messages().join("\n"));
        // Applied at once: the next connection is logged. (A connection that the kernel
        // queued on the old socket of the rebound listener just before it closed is reset
        // without tcp_migrate_req: try again then.)
        const until = Date.now() + 5_000;
        while (Date.now() < until && !records().some((r) => r.logger === "nautiluslb.access")) {
          await nameVia(at).catch(() => "");
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        assert.ok(records().some((r) => r.logger === "nautiluslb.access"), messages().join("\n"));

        await Deno.writeTextFile(
          path,
          first.replace('adminAddress: ""', 'adminAddress: "", accessLog: true, workers: 2'),
        );
        assert.equal(await reloader.reload(), "applied");
        assert.ok(messages().includes(`Settings workers of ${path} take effect at the next start`));

        await Deno.writeTextFile(path, first.replaceAll("127.0.0.1:", "127.0.0.1:99999"));
        assert.equal(await reloader.reload(), "refused");
        const refusal = records().find((r) => r.level === "ERROR")!;
        assert.match(
          refusal.message as string,
          new RegExp(`^Cannot reload ${path}: 2 problem\\(s\\), keeping the running config\\n`),
        );
        const properties = refusal.properties as Record<string, unknown>;
        assert.equal(properties.path, path);
        assert.equal(properties.count, 2);
        const issues = properties.issues as string[];
        assert.equal(issues.length, 2);
        assert.match(issues[0]!, /configurations\[0\]\.listenerAddress: .*out of range/);
        assert.equal(properties.problems, issues.join("\n"));
      } finally {
        await close();
        await a.close();
      }
    }),
});

Deno.test("ConfigReloader says when a start flag overrides a changed setting", () =>
  jsonLogs(async (records) => {
    const a = startNamed("a");
    const first = text(freePort(), a.port);
    const { reloader, path, close } = await startReloading(first, { logFlags: { level: "info" } });
    try {
      await Deno.writeTextFile(
        path,
        first.replace('adminAddress: ""', 'adminAddress: "", logLevel: debug'),
      );
      assert.equal(await reloader.reload(), "applied");
      const messages = records().map((r) => r.message);
      assert.ok(
        messages.includes(
          `settings.logLevel of ${path} changed, but --log-level info given at start still wins`,
        ),
        messages.join("\n"),
      );
      assert.ok(!records().some((r) => r.level === "DEBUG"), "the flag's level still holds");
    } finally {
      await close();
      await a.close();
    }
  }));
