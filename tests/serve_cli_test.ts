/**
 * `serve` end to end: spawns the real entry point with a temporary config in front of test
 * backends, sends traffic with each balancer, then stops it with SIGTERM while a connection
 * is in flight.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { BalancerKind } from "../src/core/types.ts";
import {
  closeQuietly,
  delay,
  freePort,
  HOST,
  isClosedWithin,
  readAll,
  readName,
  startNamed,
  TestServer,
  withTimeout,
  writeAll,
} from "./_helpers.ts";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Start-up includes loading npm modules; generous, but bounded. */
const READY_MS = 30_000;
const SLOW_ANSWER_MS = 500;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Reads a request to EOF, waits {@linkcode SLOW_ANSWER_MS}, answers `done: <request>` and
 * closes. Health probes (connect, then close without a byte) get nothing.
 */
function startSlowAnswer(onRequest: () => void): TestServer {
  return new TestServer(async (conn) => {
    const request = await readAll(conn);
    if (request.length === 0) return;
    onRequest();
    await delay(SLOW_ANSWER_MS);
    await writeAll(conn, encoder.encode(`done: ${decoder.decode(request)}`));
  });
}

function configYaml(
  balancer: BalancerKind,
  namedPort: number,
  namedBackends: readonly number[],
  slowPort: number,
  slowBackend: number,
): string {
  const list = (ports: readonly number[]) => ports.map((p) => `"${HOST}:${p}"`).join(", ");
  return `settings:
  logLevel: warning
configurations:
  - name: named
    listenerAddress: "${HOST}:${namedPort}"
    balancer: ${balancer}
    requestTimeout: 5s
    connectTimeout: 1s
    idleTimeout: 60s
    maxConnections: 100
    drainTimeout: 5s
    backends: [${list(namedBackends)}]
  - name: slow
    listenerAddress: "${HOST}:${slowPort}"
    balancer: ${balancer}
    drainTimeout: 5s
    backends: [${list([slowBackend])}]
`;
}

/** A running `serve` process. */
interface Serve {
  readonly child: Deno.ChildProcess;
  /** Settles when the process has exited and its output is read. */
  readonly output: Promise<Deno.CommandOutput>;
  readonly hasExited: () => boolean;
  /** Kills the process if it still runs and waits for it. */
  stop(): Promise<void>;
}

function spawnServe(configPath: string): Serve {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", "src/main.ts", "serve", "-c", configPath],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let hasExited = false;
  const output = child.output().finally(() => hasExited = true);
  return {
    child,
    output,
    hasExited: () => hasExited,
    async stop() {
      if (!hasExited) {
        try {
          child.kill("SIGKILL");
        } catch {
          // exited meanwhile
        }
      }
      await output.catch(() => {});
    },
  };
}

/** Polls until `port` accepts a connection that is served (reads `nameLength` bytes). */
async function waitUntilServing(serve: Serve, port: number, nameLength: number): Promise<void> {
  const deadline = performance.now() + READY_MS;
  let lastError: unknown;
  while (performance.now() < deadline) {
    if (serve.hasExited()) {
      const { code, stdout, stderr } = await serve.output;
      throw new Error(
        `serve exited with code ${code} before accepting connections:\n${decoder.decode(stdout)}${
          decoder.decode(stderr)
        }`,
      );
    }
    try {
      const conn = await Deno.connect({ hostname: HOST, port });
      try {
        await readName(conn, nameLength);
        return;
      } finally {
        conn.close();
      }
    } catch (error) {
      lastError = error;
    }
    await delay(100);
  }
  throw new Error(`serve did not accept on ${port} within ${READY_MS}ms`, { cause: lastError });
}

/** Polls until a new connection to `port` is refused (or reset without being served). */
async function waitUntilRefused(port: number, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname: HOST, port });
    } catch (error) {
      if (
        error instanceof Deno.errors.ConnectionRefused ||
        error instanceof Deno.errors.ConnectionReset
      ) return;
      throw error;
    }
    closeQuietly(conn);
    await delay(50);
  }
  throw new Error(`Port ${port} still accepts connections after ${ms}ms`);
}

async function nameVia(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: HOST, port });
  try {
    return await readName(conn, 2);
  } finally {
    conn.close();
  }
}

for (const balancer of ["round_robin", "least_connections", "random_two", "maglev"] as const) {
  Deno.test(`serve forwards with ${balancer} and drains on SIGTERM`, async () => {
    const servers = ["s0", "s1", "s2"].map((name) => startNamed(name));
    let requests = 0;
    const slow = startSlowAnswer(() => requests++);
    const dir = await Deno.makeTempDir({ prefix: "nautiluslb_serve_" });
    const namedPort = freePort();
    const slowPort = freePort();
    const configPath = `${dir}/config.yaml`;
    await Deno.writeTextFile(
      configPath,
      configYaml(balancer, namedPort, servers.map((s) => s.port), slowPort, slow.port),
    );
    const serve = spawnServe(configPath);
    let inFlight: Deno.TcpConn | undefined;
    try {
      await waitUntilServing(serve, namedPort, 2);

      const names: string[] = [];
      for (let i = 0; i < 9; i++) names.push(await nameVia(namedPort));
      for (const name of names) assert.match(name, /^s[0-2]$/);
      if (balancer === "round_robin") {
        // Exact rotation: three distinct backends, then the same order again.
        assert.equal(new Set(names.slice(0, 3)).size, 3, names.join(" "));
        assert.deepEqual(names.slice(3, 6), names.slice(0, 3));
      }
      if (balancer === "maglev") {
        assert.equal(new Set(names).size, 1, `one client, one backend: ${names.join(" ")}`);
      }
      if (balancer === "least_connections") {
        // Hold one connection open: the next one goes elsewhere.
        const held = await Deno.connect({ hostname: HOST, port: namedPort });
        try {
          const first = await readName(held, 2);
          assert.notEqual(await nameVia(namedPort), first);
        } finally {
          held.close();
        }
      }

      // A request in flight when SIGTERM arrives still gets its answer.
      inFlight = await Deno.connect({ hostname: HOST, port: slowPort });
      await writeAll(inFlight, encoder.encode("last request"));
      await inFlight.closeWrite();
      const deadline = performance.now() + 5_000;
      while (requests === 0 && performance.now() < deadline) await delay(10);
      assert.equal(requests, 1, "the slow backend got the request");

      serve.child.kill("SIGTERM");
      await waitUntilRefused(namedPort, 3_000);
      const answer = await withTimeout(readAll(inFlight), 5_000, "answer during drain");
      assert.equal(decoder.decode(answer), "done: last request");

      const { code, stderr } = await withTimeout(serve.output, 10_000, "serve to exit");
      assert.equal(code, 0, `exit code; stderr:\n${decoder.decode(stderr)}`);
    } finally {
      if (inFlight) closeQuietly(inFlight);
      await serve.stop();
      await Promise.all([...servers.map((s) => s.close()), slow.close()]);
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("serve exits 0 promptly on SIGTERM when no connection is open", async () => {
  const named = startNamed("s0");
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb_serve_" });
  const port = freePort();
  const configPath = `${dir}/config.yaml`;
  await Deno.writeTextFile(
    configPath,
    `settings:
  logLevel: warning
configurations:
  - name: only
    listenerAddress: "${HOST}:${port}"
    balancer: round_robin
    drainTimeout: 5s
    backends: ["${HOST}:${named.port}"]
`,
  );
  const serve = spawnServe(configPath);
  try {
    await waitUntilServing(serve, port, 2);
    const started = performance.now();
    serve.child.kill("SIGTERM");
    const { code, stderr } = await withTimeout(serve.output, 10_000, "serve to exit");
    assert.equal(code, 0, `exit code; stderr:\n${decoder.decode(stderr)}`);
    assert.ok(performance.now() - started < 4_000, "idle serve waited for the drain deadline");
    const conn = await Deno.connect({ hostname: HOST, port }).catch(() => undefined);
    if (conn) {
      assert.equal(await isClosedWithin(conn, 1_000), true);
      conn.close();
    }
  } finally {
    await serve.stop();
    await named.close();
    await Deno.remove(dir, { recursive: true });
  }
});
