/**
 * `check` (and `discover --check`) through the real entry point: exit codes, the table with
 * its summary, the JSON contract, and offline manifests whose nodes are loopback addresses.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { closeQuietly, delay, freePort, HOST, startNamed, withTimeout } from "./_helpers.ts";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
/** One CLI run, start-up with npm modules included. */
const RUN_MS = 30_000;
/** The example cluster's node-a (`examples/cluster/nodes.yaml`). */
const NODE_A = "127.0.0.2";
/** The mongodb Service's nodePort (`examples/cluster/services.yaml`). */
const MONGODB_NODE_PORT = 30017;

const decoder = new TextDecoder();

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function cli(...args: string[]): Promise<Run> {
  const output = await withTimeout(
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "-A", "src/main.ts", ...args],
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output(),
    RUN_MS,
    `nautiluslb ${args.join(" ")}`,
  );
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Runs `fn` with a temporary directory holding `config.yaml`, removed afterwards. */
async function withConfig(
  yaml: string,
  fn: (configPath: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb_check_" });
  try {
    await Deno.writeTextFile(`${dir}/config.yaml`, yaml);
    await fn(`${dir}/config.yaml`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function staticConfig(pools: Record<string, readonly number[]>): string {
  const listeners = Object.entries(pools).map(([name, ports]) =>
    `  - name: ${name}
    listenerAddress: "${HOST}:${freePort()}"
    backends: [${ports.map((p) => `"${HOST}:${p}"`).join(", ")}]
`
  );
  return `settings:
  logLevel: info
  adminAddress: "${HOST}:${freePort()}"
configurations:
${listeners.join("")}`;
}

/** Zeroes every `latencyMs`, which varies from run to run. */
function normalise(json: unknown): unknown {
  return JSON.parse(
    JSON.stringify(json),
    (key, value) => key === "latencyMs" && typeof value === "number" ? 0 : value,
  );
}

/** Listens on `hostname:port`, retrying a few seconds while another test holds the port. */
async function listenRetrying(hostname: string, port: number): Promise<Deno.TcpListener> {
  const deadline = performance.now() + 5_000;
  while (true) {
    try {
      return Deno.listen({ hostname, port });
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse) || performance.now() > deadline) throw error;
      await delay(100);
    }
  }
}

/** Accepts and closes at once, as a bare TCP health check needs; returns a stopper. */
function acceptAndClose(listener: Deno.TcpListener): () => Promise<void> {
  const loop = (async () => {
    for await (const conn of listener) closeQuietly(conn);
  })().catch(() => {});
  return async () => {
    closeQuietly(listener);
    await loop;
  };
}

Deno.test("check exits 0 when every pool has a healthy backend", async () => {
  const backend = startNamed("b0");
  try {
    await withConfig(staticConfig({ web: [backend.port] }), async (config) => {
      const { code, stdout, stderr } = await cli("check", "-c", config);
      assert.equal(code, 0, stderr + stdout);
      assert.match(
        stdout,
        /^POOL\s+LISTENER\s+BACKEND\s+SERVICE\s+NODE\s+HEALTH\s+LATENCY\s+ERROR$/m,
      );
      assert.match(
        stdout,
        new RegExp(
          `^web\\s+\\S+\\s+${HOST}:${backend.port}\\s+-\\s+-\\s+healthy\\s+\\d+\\.\\dms$`,
          "m",
        ),
      );
      assert.match(stdout, /^POOL\s+HEALTHY\s+STATUS$/m);
      assert.match(stdout, /^web\s+1\/1\s+up$/m);
      assert.doesNotMatch(stdout, /DOWN|unhealthy/);
    });
  } finally {
    await backend.close();
  }
});

Deno.test("check exits 1 when a pool has only a dead backend", async () => {
  const backend = startNamed("b0");
  const deadPort = freePort();
  try {
    await withConfig(
      staticConfig({ web: [backend.port], gone: [deadPort] }),
      async (config) => {
        const { code, stdout, stderr } = await cli("check", "-c", config);
        assert.equal(code, 1, stderr + stdout);
        assert.match(
          stdout,
          new RegExp(
            `^gone\\s+\\S+\\s+${HOST}:${deadPort}\\s+-\\s+-\\s+unhealthy\\s+\\S+ms\\s+connection refused$`,
            "m",
          ),
        );
        assert.match(stdout, /^web\s+1\/1\s+up$/m);
        assert.match(stdout, /^gone\s+0\/1\s+DOWN$/m);
      },
    );
  } finally {
    await backend.close();
  }
});

Deno.test("check -o json has the discover shape plus health", async () => {
  const backend = startNamed("b0");
  const deadPort = freePort();
  try {
    const yaml = staticConfig({ web: [backend.port, deadPort], gone: [deadPort] });
    await withConfig(yaml, async (config) => {
      const { code, stdout, stderr } = await cli("check", "-c", config, "-o", "json");
      assert.equal(code, 1, stderr + stdout);
      const json = JSON.parse(stdout);
      for (const pool of json.pools) {
        for (const b of pool.backends) assert.equal(typeof b.health.latencyMs, "number");
      }
      const portOf = (address: string) => Number(address.split(":")[1]);
      const listenerOf = (name: string) => yaml.split(`name: ${name}\n`)[1]!.match(/"(.+?)"/)![1];
      assert.deepEqual(normalise(json), {
        pools: [
          {
            name: "web",
            listenerAddress: listenerOf("web"),
            // Plans sort backends by address, ports compared as numbers.
            backends: [
              { address: `${HOST}:${backend.port}`, health: { state: "healthy", latencyMs: 0 } },
              {
                address: `${HOST}:${deadPort}`,
                health: { state: "unhealthy", latencyMs: 0, error: "connection refused" },
              },
            ].sort((a, b) => portOf(a.address) - portOf(b.address)),
            excluded: [],
            warnings: [],
            healthy: 1,
            total: 2,
          },
          {
            name: "gone",
            listenerAddress: listenerOf("gone"),
            backends: [
              {
                address: `${HOST}:${deadPort}`,
                health: { state: "unhealthy", latencyMs: 0, error: "connection refused" },
              },
            ],
            excluded: [],
            warnings: [],
            healthy: 0,
            total: 1,
          },
        ],
        warnings: [],
      });
      assert.doesNotMatch(stdout, /HEALTHY\s+STATUS/, "no table summary in JSON output");
    });
  } finally {
    await backend.close();
  }
});

Deno.test("check exits 2 when the config cannot be read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb_check_" });
  try {
    const { code, stdout, stderr } = await cli("check", "-c", `${dir}/missing.yaml`);
    assert.equal(code, 2, stderr + stdout);
    assert.equal(stdout, "");
    assert.match(stderr, /Cannot read config/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check --from-manifests probes the example cluster's loopback nodes", async () => {
  const both = `settings:
  logLevel: info
  adminAddress: "${HOST}:${freePort()}"
configurations:
  - name: http
    listenerAddress: "${HOST}:${freePort()}"
    backendPortName: http
  - name: mongodb
    listenerAddress: "${HOST}:${freePort()}"
    backendPortName: mongodb
    namespace: development
`;
  await withConfig(both, async (config) => {
    // Nothing listens on 127.0.0.2-3: every pool is down.
    const down = await cli("check", "-c", config, "--from-manifests", "examples/cluster/");
    assert.equal(down.code, 1, down.stderr + down.stdout);
    assert.match(down.stdout, /^http\s+0\/2\s+DOWN$/m);
    assert.match(down.stdout, /^mongodb\s+0\/2\s+DOWN$/m);

    const stop = acceptAndClose(await listenRetrying(NODE_A, MONGODB_NODE_PORT));
    try {
      const run = await cli(
        "check",
        "-c",
        config,
        "--from-manifests",
        "examples/cluster/",
        "-o",
        "json",
      );
      assert.equal(run.code, 1, "the http pool is still down");
      const pools = JSON.parse(run.stdout).pools as {
        name: string;
        healthy: number;
        total: number;
        backends: { address: string; node: string; service: string; health: { state: string } }[];
      }[];
      const mongodb = pools.find((p) => p.name === "mongodb")!;
      assert.equal(mongodb.healthy, 1);
      assert.equal(mongodb.total, 2);
      assert.deepEqual(
        mongodb.backends.map((b) => [b.address, b.service, b.node, b.health.state]),
        [
          [`${NODE_A}:${MONGODB_NODE_PORT}`, "development/mongodb-service", "node-a", "healthy"],
          [`127.0.0.3:${MONGODB_NODE_PORT}`, "development/mongodb-service", "node-b", "unhealthy"],
        ],
      );
      assert.equal(pools.find((p) => p.name === "http")!.healthy, 0);

      // Only the mongodb listener: every pool checked has a healthy backend.
      const mongodbOnly = both.replace(/ {2}- name: http\n( {4}.*\n)+/, "");
      await withConfig(mongodbOnly, async (only) => {
        const up = await cli("check", "-c", only, "--from-manifests", "examples/cluster/");
        assert.equal(up.code, 0, up.stderr + up.stdout);
        assert.match(up.stdout, /^mongodb\s+1\/2\s+up$/m);
      });
    } finally {
      await stop();
    }
  });
});

Deno.test("discover --check adds the health column and still exits 0", async () => {
  const backend = startNamed("b0");
  const deadPort = freePort();
  try {
    await withConfig(staticConfig({ web: [backend.port, deadPort] }), async (config) => {
      const plain = await cli("discover", "-c", config);
      assert.equal(plain.code, 0, plain.stderr + plain.stdout);
      assert.doesNotMatch(plain.stdout, /HEALTH/);

      const { code, stdout, stderr } = await cli("discover", "-c", config, "--check");
      assert.equal(code, 0, stderr + stdout);
      assert.match(
        stdout,
        /^POOL\s+LISTENER\s+BACKEND\s+SERVICE\s+NODE\s+HEALTH\s+LATENCY\s+ERROR$/m,
      );
      assert.match(
        stdout,
        new RegExp(`${HOST}:${backend.port}\\s+-\\s+-\\s+healthy\\s+\\S+ms$`, "m"),
      );
      assert.match(
        stdout,
        new RegExp(
          `${HOST}:${deadPort}\\s+-\\s+-\\s+unhealthy\\s+\\S+ms\\s+connection refused$`,
          "m",
        ),
      );
      assert.doesNotMatch(stdout, /HEALTHY\s+STATUS/, "no check summary");
    });
  } finally {
    await backend.close();
  }
});

Deno.test("check and discover report a bad health annotation as a warning", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb_check_" });
  try {
    await Deno.writeTextFile(
      `${dir}/cluster.yaml`,
      `apiVersion: v1
kind: Node
metadata:
  name: node-a
status:
  conditions: [{type: Ready, status: "True"}]
  addresses: [{type: InternalIP, address: ${NODE_A}}]
---
apiVersion: v1
kind: Service
metadata:
  name: db
  namespace: ns
  annotations:
    nautiluslb.cloudresty.io/enabled: "true"
    nautiluslb.cloudresty.io/health-check-fall: "zero"
spec:
  type: NodePort
  ports: [{name: db, protocol: TCP, port: 5432, nodePort: ${freePort()}}]
`,
    );
    const yaml = `settings:
  logLevel: info
  adminAddress: "${HOST}:${freePort()}"
configurations:
  - name: db
    listenerAddress: "${HOST}:${freePort()}"
    backendPortName: db
`;
    await withConfig(yaml, async (config) => {
      const warning =
        'Service ns/db: annotation nautiluslb.cloudresty.io/health-check-fall "zero" ignored: fall must be an integer in range 1-100';
      const discover = await cli("discover", "-c", config, "--from-manifests", dir);
      assert.equal(discover.code, 0, discover.stderr + discover.stdout);
      assert.ok(discover.stdout.includes(`warning: db: ${warning}`), discover.stdout);
      const check = await cli("check", "-c", config, "--from-manifests", dir, "-o", "json");
      assert.equal(check.code, 1, check.stderr + check.stdout);
      assert.deepEqual(JSON.parse(check.stdout).pools[0].warnings, [warning]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
