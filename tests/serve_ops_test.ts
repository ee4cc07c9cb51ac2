/**
 * The operator-facing parts through the real `serve` command: the access log on stderr,
 * `maxConnectionsPerBackend` refusing at once, and the new metrics on `/metrics`.
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
  withTimeout,
} from "./_helpers.ts";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const decoder = new TextDecoder();

async function metricsText(port: number): Promise<string> {
  const res = await fetch(`http://${HOST}:${port}/metrics`);
  return await res.text();
}

/**
 * With `workers`, the config says `logFormat: text` and `--log-format json` overrides it:
 * the access lines, written in the workers, parse as JSON only if the flag reached them.
 */
async function accessLogAndLimits(workers: number): Promise<void> {
  const named = startNamed("s0");
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb_ops_" });
  const port = freePort();
  const adminPort = freePort();
  const configPath = `${dir}/config.yaml`;
  await Deno.writeTextFile(
    configPath,
    `settings:
  logLevel: error
  logFormat: ${workers > 1 ? "text" : "json"}
  accessLog: true
  workers: ${workers}
  adminAddress: "${HOST}:${adminPort}"
configurations:
  - name: only
    listenerAddress: "${HOST}:${port}"
    maxConnectionsPerBackend: 1
    drainTimeout: 1s
    healthCheck: { enabled: false }
    backends: ["${HOST}:${named.port}"]
`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-net",
      "-A",
      "src/main.ts",
      ...(workers > 1 ? ["--log-format", "json"] : []),
      "serve",
      "-c",
      configPath,
    ],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  let first: Deno.TcpConn | undefined;
  try {
    const deadline = performance.now() + 30_000;
    while (first === undefined) {
      assert.ok(performance.now() < deadline, "serve did not accept within 30s");
      try {
        const conn = await Deno.connect({ hostname: HOST, port });
        try {
          assert.equal(await readName(conn, 2), "s0");
          first = conn;
        } catch {
          conn.close();
        }
      } catch {
        await delay(100);
      }
    }
    // The one backend holds its one connection: the next client is refused at once.
    const second = await Deno.connect({ hostname: HOST, port });
    assert.ok(await isClosedWithin(second, 3_000), "refused over maxConnectionsPerBackend");
    second.close();
    first.close();
    first = undefined;
    // Workers report their counters every 250 ms: wait for both connections, bounded.
    let text = "";
    for (let i = 0; i < 30; i++) {
      await delay(100);
      text = await metricsText(adminPort);
      if (/^nautiluslb_connection_duration_seconds_count\{listener="only"\} 2$/m.test(text)) break;
    }
    assert.match(
      text,
      /^nautiluslb_connections_refused_total\{listener="only",cause="limit"\} 1$/m,
    );
    assert.match(text, /^nautiluslb_connection_duration_seconds_count\{listener="only"\} 2$/m);
    assert.match(text, /^nautiluslb_backend_connect_duration_seconds_count\{listener="only"\} 1$/m);
    assert.match(
      text,
      new RegExp(
        `^nautiluslb_backend_connections_total\\{pool="only",backend="${HOST}:${named.port}"\\} 1$`,
        "m",
      ),
    );
    assert.ok(!/^# TYPE nodejs_gc_duration_seconds/m.test(text));
    child.kill("SIGTERM");
    const { code, stderr } = await withTimeout(output, 15_000, "serve to exit");
    assert.equal(code, 0, decoder.decode(stderr));
    const access = decoder.decode(stderr).split("\n").filter((l) => l.includes("nautiluslb.access"))
      .map((l) => JSON.parse(l).properties);
    assert.deepEqual(access.map((a) => a.outcome).toSorted(), ["done", "limit"]);
    const done = access.find((a) => a.outcome === "done");
    assert.equal(done.listener, "only");
    assert.equal(done.backend, `${HOST}:${named.port}`);
    assert.equal(done.bytesToClient, 2);
  } finally {
    if (first !== undefined) closeQuietly(first);
    try {
      child.kill("SIGKILL");
    } catch {
      // exited already
    }
    await output.catch(() => {});
    await named.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("serve writes an access log, refuses over maxConnectionsPerBackend and exports why", async () => {
  await accessLogAndLimits(1);
});

Deno.test("serve with workers: 2 writes the access log in the workers with the flags' format and sums their metrics", async () => {
  await accessLogAndLimits(2);
});
