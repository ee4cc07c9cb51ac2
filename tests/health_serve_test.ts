/**
 * Health checking through the real `serve` process: active ejection of a killed backend and
 * its return after `rise` successes, passive ejection after `fall` failed client connects,
 * and both `whenAllUnhealthy` policies. State is observed on the admin server's `/pools` and
 * `/metrics`, and transitions in the log on stderr.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  closeQuietly,
  delay,
  freePort,
  HOST,
  isClosedWithin,
  readName,
  startNamed,
  type TestServer,
  withTimeout,
} from "./_helpers.ts";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Start-up includes loading npm modules; generous, but bounded. */
const READY_MS = 30_000;
/** Bound for a state change that the config makes take ~200 ms (fall or rise × 100 ms). */
const CHANGE_MS = 1_500;
const NAME_LENGTH = 2;

/**
 * A backend that answers its two-letter name at once and holds the connection until the
 * client closes it; `startNamed(name, port)` restarts a killed one on the same address, and
 * `close()` drops the listener and every open connection, as a crashed process would.
 */
type NamedBackend = TestServer;

interface ListenerYaml {
  readonly port: number;
  readonly backends: readonly NamedBackend[];
  /** Lines appended under the listener, e.g. `whenAllUnhealthy: any`. */
  readonly extra: string;
  /** Lines under `healthCheck:`. */
  readonly healthCheck: string;
}

function configYaml(adminPort: number, l: ListenerYaml): string {
  const backends = l.backends.map((b) => `"${b.backend.key}"`).join(", ");
  const indent = (text: string, spaces: number) =>
    text.trim().split("\n").map((line) => " ".repeat(spaces) + line.trim()).join("\n");
  return `settings:
  logLevel: info
  adminAddress: "${HOST}:${adminPort}"
configurations:
  - name: web
    listenerAddress: "${HOST}:${l.port}"
    balancer: round_robin
    connectTimeout: 1s
    requestTimeout: 5s
    drainTimeout: 1s
    backends: [${backends}]
${indent(l.extra, 4)}
    healthCheck:
${indent(l.healthCheck, 6)}
`;
}

interface PoolsJson {
  pools: {
    name: string;
    isFailOpen: boolean;
    backends: {
      key: string;
      health: "unknown" | "healthy" | "unhealthy";
      activeConnections: number;
      isDraining: boolean;
    }[];
  }[];
}

/**
 * A running `serve` process with its admin server. Its log (stderr) is collected as it
 * comes, so a test can look at the lines written since a point in time.
 */
class Serve {
  readonly child: Deno.ChildProcess;
  readonly adminPort: number;
  readonly port: number;
  /** Settles with the exit status once the process has exited and its output is read. */
  readonly done: Promise<Deno.CommandStatus>;
  #log = "";
  #hasExited = false;
  #dir: string;

  private constructor(dir: string, adminPort: number, port: number) {
    this.#dir = dir;
    this.adminPort = adminPort;
    this.port = port;
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "-A", "src/main.ts", "serve", "-c", `${dir}/config.yaml`],
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async () => {
      for await (const text of this.child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#log += text;
      }
    };
    this.done = Promise.all([
      this.child.status,
      collect(),
      this.child.stdout.pipeTo(new WritableStream()),
    ]).then(([status]) => status).finally(() => this.#hasExited = true);
  }

  /** Everything logged so far. */
  get log(): string {
    return this.#log;
  }

  /** Writes the config, spawns `serve`, and waits until `/pools` answers. */
  static async start(listener: Omit<ListenerYaml, "port">): Promise<Serve> {
    const dir = await Deno.makeTempDir({ prefix: "nautiluslb_health_" });
    const adminPort = freePort();
    const port = freePort();
    await Deno.writeTextFile(
      `${dir}/config.yaml`,
      configYaml(adminPort, { ...listener, port }),
    );
    const serve = new Serve(dir, adminPort, port);
    try {
      await serve.#waitReady();
    } catch (error) {
      await serve.close();
      throw error;
    }
    return serve;
  }

  async #waitReady(): Promise<void> {
    const deadline = performance.now() + READY_MS;
    let lastError: unknown;
    while (performance.now() < deadline) {
      if (this.#hasExited) {
        const { code } = await this.done;
        throw new Error(`serve exited with code ${code} before it was ready:\n${this.#log}`);
      }
      try {
        await this.pools();
        return;
      } catch (error) {
        lastError = error;
      }
      await delay(100);
    }
    throw new Error(`serve's admin server did not answer within ${READY_MS}ms`, {
      cause: lastError,
    });
  }

  /** `GET /pools`, the pool named `web`. */
  async pools(): Promise<PoolsJson["pools"][number]> {
    const response = await withTimeout(
      fetch(`http://${HOST}:${this.adminPort}/pools`),
      2_000,
      "GET /pools",
    );
    const body = await response.json() as PoolsJson;
    assert.equal(response.status, 200);
    const pool = body.pools.find((p) => p.name === "web");
    assert.ok(pool, "pool web in /pools");
    return pool;
  }

  /** Health of one backend as `/pools` shows it. */
  async health(backend: NamedBackend): Promise<string> {
    const pool = await this.pools();
    const row = pool.backends.find((b) => b.key === backend.backend.key);
    assert.ok(row, `${backend.backend.key} in /pools`);
    return row.health;
  }

  /** A counter of listener `web` from `/metrics`; `labels` as rendered, after the listener's. */
  async counter(name: string, labels = ""): Promise<number> {
    const response = await withTimeout(
      fetch(`http://${HOST}:${this.adminPort}/metrics`),
      2_000,
      "GET /metrics",
    );
    const text = await response.text();
    const line = text.split("\n").find((l) => l.startsWith(`${name}{listener="web"${labels}} `));
    assert.ok(line, `${name} in /metrics`);
    return Number(line.split(" ").at(-1));
  }

  /**
   * Polls `/pools` every 20 ms until `predicate` holds, bounded by `ms`.
   * @returns the milliseconds it took
   */
  async waitPools(
    predicate: (pool: PoolsJson["pools"][number]) => boolean,
    what: string,
    ms: number,
  ): Promise<number> {
    const started = performance.now();
    const deadline = started + ms;
    let last: unknown;
    while (performance.now() < deadline) {
      last = await this.pools();
      if (predicate(last as PoolsJson["pools"][number])) return performance.now() - started;
      await delay(20);
    }
    throw new Error(`Timed out after ${ms}ms: ${what}; last /pools: ${JSON.stringify(last)}`);
  }

  /** Connects to the listener. */
  connect(): Promise<Deno.TcpConn> {
    return withTimeout(
      Deno.connect({ hostname: HOST, port: this.port }),
      2_000,
      "connect to serve",
    );
  }

  /** Connects through the proxy and returns the backend's name. */
  async nameVia(): Promise<string> {
    const conn = await this.connect();
    try {
      return await readName(conn, NAME_LENGTH);
    } finally {
      conn.close();
    }
  }

  /** Connects through the proxy; whether serve closes the connection within `ms`. */
  async closesWithin(ms: number): Promise<boolean> {
    const conn = await this.connect();
    try {
      return await isClosedWithin(conn, ms);
    } finally {
      closeQuietly(conn);
    }
  }

  /** Stops with SIGTERM and returns the whole log; the exit code must be 0. */
  async stop(): Promise<string> {
    this.child.kill("SIGTERM");
    const { code } = await withTimeout(this.done, 10_000, "serve to exit");
    assert.equal(code, 0, `exit code; log:\n${this.#log}`);
    return this.#log;
  }

  /** Kills the process if it still runs, waits for it, and removes the config. */
  async close(): Promise<void> {
    if (!this.#hasExited) {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // exited meanwhile
      }
    }
    await this.done.catch(() => {});
    await Deno.remove(this.#dir, { recursive: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Named backends (see {@linkcode NamedBackend}), closed together when disposed. */
function startBackends(...names: string[]): NamedBackend[] & AsyncDisposable {
  const backends = names.map((name) => startNamed(name));
  return Object.assign(backends, {
    async [Symbol.asyncDispose]() {
      await Promise.all(backends.map((b) => b.close()));
    },
  });
}

const isHealthy = (backends: readonly NamedBackend[]) => (pool: PoolsJson["pools"][number]) =>
  backends.every((b) => pool.backends.find((r) => r.key === b.backend.key)?.health === "healthy");

const isUnhealthy = (backends: readonly NamedBackend[]) => (pool: PoolsJson["pools"][number]) =>
  backends.every((b) => pool.backends.find((r) => r.key === b.backend.key)?.health === "unhealthy");

/** Log lines (stderr) that report `backend` becoming `state`. */
function transitionLines(log: string, backend: NamedBackend, state: string): string[] {
  return log.split("\n").filter((line) =>
    line.includes(`Backend ${backend.backend.key} of pool web is ${state} `)
  );
}

/** Where the log ends now, once lines already written have reached this process. */
async function logMark(serve: Serve): Promise<number> {
  await delay(200);
  return serve.log.length;
}

/** Start-up, npm loading and the first checks of a busy machine: a wider bound. */
const START_MS = 5_000;

Deno.test("serve ejects a killed backend after fall x interval and takes it back after rise", async () => {
  await using backends = startBackends("b0", "b1", "b2");
  await using serve = await Serve.start({
    backends,
    extra: "",
    healthCheck: "interval: 100ms\ntimeout: 100ms\nrise: 2\nfall: 2",
  });
  await serve.waitPools(isHealthy(backends), "every backend healthy", START_MS);
  const first = new Set<string>();
  for (let i = 0; i < 6; i++) first.add(await serve.nameVia());
  assert.deepEqual([...first].sort(), ["b0", "b1", "b2"]);

  // No client traffic until the ejection: only active checks can notice.
  const dead = backends[1]!;
  const killMark = await logMark(serve);
  await dead.close();
  const ejectMs = await serve.waitPools(
    isUnhealthy([dead]),
    `${dead.backend.key} unhealthy after its kill`,
    CHANGE_MS,
  );
  assert.ok(ejectMs >= 50, `ejected after ${ejectMs.toFixed(0)}ms, before fall checks ran`);
  const names: string[] = [];
  for (let i = 0; i < 20; i++) names.push(await serve.nameVia());
  assert.ok(names.every((n) => n === "b0" || n === "b2"), names.join(" "));
  assert.equal(new Set(names).size, 2, names.join(" "));
  assert.equal(
    await serve.counter("nautiluslb_listener_connect_failures_total"),
    0,
    "no client connection was sent to the ejected backend",
  );

  // Back on the same port: healthy after `rise` (2) successful probes, then serving again.
  const restartMark = await logMark(serve);
  await using revived = startNamed("b1", dead.port);
  const riseMs = await serve.waitPools(
    isHealthy([revived]),
    `${revived.backend.key} healthy after its restart`,
    CHANGE_MS,
  );
  assert.ok(revived.accepted >= 2, `healthy after ${revived.accepted} probe(s); rise is 2`);
  const after = new Set<string>();
  for (let i = 0; i < 6; i++) after.add(await serve.nameVia());
  assert.deepEqual([...after].sort(), ["b0", "b1", "b2"]);

  const log = await serve.stop();
  const killed = log.slice(killMark, restartMark);
  const restarted = log.slice(restartMark);
  // One line per transition: the ejection, then the return.
  assert.equal(transitionLines(killed, dead, "unhealthy").length, 1, killed);
  assert.match(transitionLines(killed, dead, "unhealthy")[0]!, /\(active\): connection refused/);
  assert.equal(transitionLines(killed, dead, "healthy").length, 0, killed);
  assert.equal(transitionLines(restarted, dead, "healthy").length, 1, restarted);
  assert.match(transitionLines(restarted, dead, "healthy")[0]!, /\(active\)/);
  assert.equal(transitionLines(restarted, dead, "unhealthy").length, 0, restarted);
  for (const b of [backends[0]!, backends[2]!]) {
    assert.equal(transitionLines(log.slice(killMark), b, "unhealthy").length, 0, log);
  }
  console.log(
    `  active: kill to ejection ${ejectMs.toFixed(0)}ms, restart to healthy ${riseMs.toFixed(0)}ms`,
  );
});

Deno.test("serve ejects a dead backend after fall failed client connects, clients unharmed", async () => {
  await using backends = startBackends("b0", "b1", "b2");
  // Active checks run once at start-up, then not again within this test.
  await using serve = await Serve.start({
    backends,
    extra: "",
    healthCheck: "interval: 60s\ntimeout: 1s\nrise: 2\nfall: 2",
  });
  await serve.waitPools(isHealthy(backends), "every backend healthy", START_MS);

  const dead = backends[1]!;
  const mark = await logMark(serve);
  await dead.close();
  const started = performance.now();
  let connections = 0;
  const names: string[] = [];
  // Round robin over three backends sends every third connection to the dead one first.
  while ((await serve.health(dead)) !== "unhealthy") {
    assert.ok(connections < 3 * 2 + 3, `still not ejected after ${connections} connections`);
    names.push(await serve.nameVia());
    connections++;
  }
  const ejectMs = performance.now() - started;
  assert.equal(
    await serve.counter("nautiluslb_listener_connect_failures_total"),
    2,
    "ejected after exactly fall (2) failed connects",
  );
  for (let i = 0; i < 10; i++) names.push(await serve.nameVia());
  assert.ok(names.every((n) => n === "b0" || n === "b2"), names.join(" "));
  assert.equal(
    await serve.counter("nautiluslb_listener_connect_failures_total"),
    2,
    "no connect attempt to the ejected backend",
  );
  assert.equal(
    await serve.counter("nautiluslb_connections_refused_total", ',cause="no_backend"'),
    0,
  );

  const log = (await serve.stop()).slice(mark);
  const lines = transitionLines(log, dead, "unhealthy");
  assert.equal(lines.length, 1, log);
  assert.match(lines[0]!, /\(passive\): connection refused/i);
  console.log(
    `  passive: ejected after ${connections} client connection(s), ${ejectMs.toFixed(0)}ms`,
  );
});

Deno.test("serve with active checks off still ejects a dead backend passively; rotation stays even", async () => {
  await using backends = startBackends("b0", "b1", "b2");
  await using serve = await Serve.start({ backends, extra: "", healthCheck: "enabled: false" });
  const dead = backends[1]!;
  await dead.close();
  // One client meets the dead backend (unknown: one failure ejects), is retried elsewhere.
  const names: string[] = [];
  const waits: number[] = [];
  for (let i = 0; i < 12; i++) {
    const started = performance.now();
    names.push(await serve.nameVia());
    waits.push(performance.now() - started);
  }
  assert.equal(await serve.health(dead), "unhealthy");
  assert.ok(names.every((n) => n === "b0" || n === "b2"), names.join(" "));
  assert.equal(
    await serve.counter("nautiluslb_listener_connect_failures_total"),
    1,
    "exactly one client attempt met the dead backend",
  );
  const after: string[] = [];
  for (let i = 0; i < 20; i++) after.push(await serve.nameVia());
  assert.deepEqual(
    ["b0", "b2"].map((n) => after.filter((x) => x === n).length),
    [10, 10],
    after.join(" "),
  );
  assert.equal(await serve.counter("nautiluslb_listener_connect_failures_total"), 1);
  const log = await serve.stop();
  assert.match(
    transitionLines(log, dead, "unhealthy")[0] ?? "",
    /\(passive\): connection refused/i,
  );
  console.log(
    `  checks off: per-client wait ms ${waits.map((w) => w.toFixed(0)).join(" ")}`,
  );
});

Deno.test("serve with whenAllUnhealthy reject closes new connections at once", async () => {
  await using backends = startBackends("b0", "b1");
  // A dead loopback port refuses at once; the timeout only matters for live ones.
  await using serve = await Serve.start({
    backends,
    extra: "whenAllUnhealthy: reject",
    healthCheck: "interval: 100ms\ntimeout: 1s\nrise: 2\nfall: 1",
  });
  await serve.waitPools(isHealthy(backends), "every backend healthy", START_MS);
  const mark = await logMark(serve);
  await Promise.all(backends.map((b) => b.close()));
  await serve.waitPools(
    (p) => isUnhealthy(backends)(p) && !p.isFailOpen,
    "every backend unhealthy, not fail-open",
    CHANGE_MS,
  );

  const started = performance.now();
  assert.equal(await serve.closesWithin(1_000), true, "connection closed");
  const closeMs = performance.now() - started;
  assert.equal(
    await serve.counter("nautiluslb_connections_refused_total", ',cause="no_backend"'),
    1,
  );
  assert.equal(
    await serve.counter("nautiluslb_listener_connect_failures_total"),
    0,
    "no backend was dialed",
  );

  const log = (await serve.stop()).slice(mark);
  for (const b of backends) assert.equal(transitionLines(log, b, "unhealthy").length, 1, log);
  assert.match(log, /no healthy backend in pool/);
  console.log(`  reject: connection closed after ${closeMs.toFixed(0)}ms`);
});

Deno.test("serve with whenAllUnhealthy any tries every backend", async () => {
  await using backends = startBackends("b0", "b1");
  // rise 100 x 100 ms: a revived backend stays unhealthy for the rest of this test.
  await using serve = await Serve.start({
    backends,
    extra: "whenAllUnhealthy: any",
    healthCheck: "interval: 100ms\ntimeout: 1s\nrise: 100\nfall: 1",
  });
  await serve.waitPools(isHealthy(backends), "every backend healthy", START_MS);
  const mark = await logMark(serve);
  await Promise.all(backends.map((b) => b.close()));
  await serve.waitPools(
    (p) => isUnhealthy(backends)(p) && p.isFailOpen,
    "every backend unhealthy, fail-open",
    CHANGE_MS,
  );

  // All dead: both are tried, then the client is closed.
  assert.equal(await serve.closesWithin(3_000), true, "connection closed");
  assert.equal(await serve.counter("nautiluslb_listener_connect_failures_total"), 2);
  assert.equal(
    await serve.counter("nautiluslb_connections_refused_total", ',cause="no_backend"'),
    0,
  );

  // One is back but not yet healthy again: fail-open still reaches it.
  await using _revived = startNamed("b1", backends[1]!.port);
  assert.equal(await serve.nameVia(), "b1");
  assert.equal(await serve.nameVia(), "b1");
  const pool = await serve.pools();
  assert.ok(isUnhealthy(backends)(pool) && pool.isFailOpen, JSON.stringify(pool));

  const log = (await serve.stop()).slice(mark);
  for (const b of backends) assert.equal(transitionLines(log, b, "unhealthy").length, 1, log);
  assert.equal(transitionLines(log, backends[1]!, "healthy").length, 0, log);
});
