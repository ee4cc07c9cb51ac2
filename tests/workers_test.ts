/**
 * `serve` with `settings.workers: 2` through the real CLI: Maglev agrees across workers and
 * across processes (clients from many source addresses), and every worker follows a
 * Kubernetes change from the fake API server.
 */
import assert from "node:assert/strict";
import { connect as netConnect } from "node:net";
import { FakeKubeApi, type KubeObject } from "./fake_kube_api.ts";
import { closeQuietly, delay, freePort, startNamed, type TestServer } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);
const READY_MS = 30_000;

/** A `serve` child process with its admin port. */
class Serve {
  readonly child: Deno.ChildProcess;
  readonly adminPort: number;
  readonly stderr: Promise<string>;

  constructor(config: string, adminPort: number) {
    this.adminPort = adminPort;
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--unstable-net", "-A", "src/main.ts", "serve", "-c", config],
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.stderr = new Response(this.child.stderr).text();
  }

  async get(path: string): Promise<string> {
    const response = await fetch(`http://127.0.0.1:${this.adminPort}${path}`);
    const body = await response.text();
    if (!response.ok) throw new Error(`${path}: ${response.status}`);
    return body;
  }

  async ready(): Promise<void> {
    const deadline = performance.now() + READY_MS;
    while (performance.now() < deadline) {
      if (await this.get("/readyz").then(() => true, () => false)) return;
      await delay(50);
    }
    throw new Error(`serve not ready within ${READY_MS}ms`);
  }

  /** Values of one metric, by its label text. */
  async metric(name: string): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    for (const line of (await this.get("/metrics")).split("\n")) {
      const match = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line);
      if (match !== null) found.set(match[1] ?? "", Number(match[2]));
    }
    return found;
  }

  /** SIGTERM; the exit code and what it logged. */
  async stop(): Promise<{ code: number; stderr: string }> {
    try {
      this.child.kill("SIGTERM");
    } catch {
      // exited already
    }
    const { code } = await this.child.status;
    return { code, stderr: await this.stderr };
  }
}

/** The backend name a connection from `localAddress` gets through `port`. */
function nameFrom(localAddress: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: "127.0.0.1", port, localAddress });
    let text = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer for ${localAddress} within 5s`));
    }, 5_000);
    socket.on("data", (chunk: Uint8Array) => {
      text += decode(chunk);
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    });
    socket.on("error", (error: Error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function fingerprintOf(labels: string): string {
  return /fingerprint="([0-9a-f]+)"/.exec(labels)?.[1] ?? "";
}

Deno.test("workers: Maglev picks and tables agree across workers and across processes", async () => {
  const backends: TestServer[] = ["a", "b", "c", "d", "e"].map((n) => startNamed(n));
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb_workers_" });
  const serves: Serve[] = [];
  const ports: number[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const adminPort = freePort();
      const port = freePort();
      ports.push(port);
      const config = `${dir}/config${i}.yaml`;
      await Deno.writeTextFile(
        config,
        `settings:
  adminAddress: "127.0.0.1:${adminPort}"
  logLevel: warning
  workers: 2
configurations:
  - name: web
    listenerAddress: "127.0.0.1:${port}"
    balancer: maglev
    maglev: { tableSize: 65537, seed: 11 }
    backends: [${backends.map((b) => `"127.0.0.1:${b.port}"`).join(", ")}]
`,
      );
      serves.push(new Serve(config, adminPort));
    }
    await Promise.all(serves.map((s) => s.ready()));

    const picks = new Map<string, Set<string>>();
    const perProcess = 4;
    for (let host = 2; host <= 20; host++) {
      const source = `127.0.0.${host}`;
      const seen = new Set<string>();
      for (const port of ports) {
        for (let i = 0; i < perProcess; i++) seen.add(await nameFrom(source, port));
      }
      picks.set(source, seen);
    }
    for (const [source, seen] of picks) {
      assert.equal(seen.size, 1, `${source} got ${[...seen]}`);
    }
    const used = new Set([...picks.values()].map((s) => [...s][0]));
    assert.ok(used.size >= 2, `19 sources spread over backends: ${[...used]}`);

    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "-A",
        "src/main.ts",
        "discover",
        "-c",
        `${dir}/config0.yaml`,
        "-o",
        "json",
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, decode(out.stderr));
    const discovered = JSON.parse(decode(out.stdout)).pools[0].fingerprint;
    assert.match(discovered, /^[0-9a-f]{16}$/);

    for (const serve of serves) {
      const info = [...(await serve.metric("nautiluslb_pool_info")).keys()];
      assert.deepEqual(info.map(fingerprintOf), [discovered]);
      const perWorker = [...(await serve.metric("nautiluslb_worker_pool_info")).keys()];
      assert.deepEqual(perWorker.map(fingerprintOf), [discovered, discovered]);
      let accepted = new Map<string, number>();
      const deadline = performance.now() + 3_000;
      while (performance.now() < deadline) {
        accepted = await serve.metric("nautiluslb_worker_connections_accepted_total");
        if ([...accepted.values()].reduce((a, b) => a + b, 0) === 19 * perProcess) break;
        await delay(50);
      }
      const counts = [...accepted.values()];
      assert.equal(counts.length, 2);
      assert.equal(counts.reduce((a, b) => a + b, 0), 19 * perProcess);
      assert.ok(counts.every((n) => n > 0), `both workers accepted: ${counts}`);
    }
    // SIGTERM drains and stops every worker; the process exits 0 well within drainTimeout.
    const signalledAt = performance.now();
    const stopped = await Promise.all(serves.splice(0).map((s) => s.stop()));
    for (const { code, stderr } of stopped) assert.equal(code, 0, stderr);
    const stopMs = performance.now() - signalledAt;
    assert.ok(stopMs < 10_000, `stopped ${Math.round(stopMs)}ms after SIGTERM`);
  } finally {
    for (const serve of serves) await serve.stop();
    for (const b of backends) await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

function node(name: string, ip: string, ready: "True" | "False" = "True"): KubeObject {
  return {
    kind: "Node",
    metadata: { name },
    spec: {},
    status: {
      addresses: [{ type: "InternalIP", address: ip }],
      conditions: [{ type: "Ready", status: ready }],
    },
  };
}

Deno.test("workers: every worker follows a Kubernetes change within milliseconds", async () => {
  const nodePort = freePort();
  // Node backends listen on each node's address at the NodePort.
  const listeners = ["127.0.0.2", "127.0.0.3"].map((hostname) =>
    Deno.listen({ hostname, port: nodePort })
  );
  const accepting = listeners.map(async (l) => {
    for await (const conn of l) closeQuietly(conn);
  });
  await using fake = await FakeKubeApi.start();
  fake.upsert(node("node-a", "127.0.0.2"));
  fake.upsert(node("node-b", "127.0.0.3"));
  fake.upsert({
    kind: "Service",
    metadata: {
      name: "db",
      namespace: "default",
      annotations: { "nautiluslb.cloudresty.io/enabled": "true" },
    },
    spec: {
      type: "NodePort",
      clusterIP: "10.96.0.10",
      ports: [{ name: "db", protocol: "TCP", port: 5432, nodePort }],
    },
  });
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb_workers_" });
  const adminPort = freePort();
  const config = `${dir}/config.yaml`;
  await Deno.writeTextFile(
    config,
    `settings:
  kubeconfigPath: ${JSON.stringify(await fake.kubeconfig())}
  adminAddress: "127.0.0.1:${adminPort}"
  logLevel: warning
  workers: 2
configurations:
  - name: db
    listenerAddress: "127.0.0.1:${freePort()}"
    backendPortName: db
    namespace: default
    balancer: maglev
    healthCheck: { interval: 200ms, rise: 1 }
`,
  );
  const serve = new Serve(config, adminPort);
  try {
    await serve.ready();
    const agreed = async (): Promise<string | undefined> => {
      const pool = [...(await serve.metric("nautiluslb_pool_info")).keys()].map(fingerprintOf);
      const workers = [...(await serve.metric("nautiluslb_worker_pool_info")).keys()]
        .map(fingerprintOf);
      return pool.length === 1 && workers.length === 2 && workers.every((f) => f === pool[0])
        ? pool[0]
        : undefined;
    };
    const poolKeys = async () =>
      JSON.parse(await serve.get("/pools")).pools[0].backends
        .filter((b: { health: string; isDraining: boolean }) =>
          b.health === "healthy" && !b.isDraining
        )
        .map((b: { key: string }) => b.key);
    let before: string | undefined;
    const deadline = performance.now() + 10_000;
    while (performance.now() < deadline) {
      before = await agreed();
      if (before !== undefined && (await poolKeys()).length === 2) break;
      await delay(20);
    }
    assert.ok(before !== undefined, "workers agree on the first pool");
    assert.deepEqual(await poolKeys(), [`127.0.0.2:${nodePort}`, `127.0.0.3:${nodePort}`]);

    const started = performance.now();
    fake.upsert(node("node-b", "127.0.0.3", "False"));
    let after: string | undefined;
    while (performance.now() - started < 10_000) {
      after = await agreed();
      if (after !== undefined && after !== before) break;
      await delay(5);
    }
    const tookMs = Math.round(performance.now() - started);
    assert.ok(after !== undefined && after !== before, "every worker has the new pool");
    assert.deepEqual(await poolKeys(), [`127.0.0.2:${nodePort}`]);
    console.log(`every worker agreed on the new pool ${tookMs}ms after the change`);
  } finally {
    await serve.stop();
    for (const l of listeners) l.close();
    await Promise.all(accepting);
    await Deno.remove(dir, { recursive: true });
  }
});
