/**
 * `discover` through the real CLI against the in-process fake API server: the JSON contract,
 * `--watch` lines with reasons, and exit codes for unusable credentials.
 */
import assert from "node:assert/strict";
import { FakeKubeApi, type KubeObject } from "./fake_kube_api.ts";
import { delay } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

function service(namespace: string, name: string, annotated = true): KubeObject {
  return {
    kind: "Service",
    metadata: {
      name,
      namespace,
      annotations: annotated ? { "nautiluslb.cloudresty.io/enabled": "true" } : {},
    },
    spec: {
      type: "NodePort",
      clusterIP: "10.96.0.10",
      ports: [{ name: "mongodb", protocol: "TCP", port: 27017, nodePort: 30017 }],
    },
  };
}

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

async function withCluster(fn: (fake: FakeKubeApi, config: string) => Promise<void>) {
  await using fake = await FakeKubeApi.start();
  fake.upsert(node("node-a", "127.0.0.2"));
  fake.upsert(node("node-b", "127.0.0.3"));
  fake.upsert(service("development", "mongodb-service"));
  fake.upsert(service("development", "plain", false));
  fake.upsert(service("other", "mongodb-service"));
  const kubeconfig = await fake.kubeconfig();
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(
      config,
      `settings:
  kubeconfigPath: ${JSON.stringify(kubeconfig)}
  logLevel: warning
configurations:
  - name: mongodb_internal_service
    listenerAddress: ":27017"
    backendPortName: mongodb
    namespace: development
`,
    );
    await fn(fake, config);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("discover -o json prints the documented contract from a live API", async () => {
  await withCluster(async (_fake, config) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "src/main.ts", "discover", "-c", config, "-o", "json"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, decode(out.stderr));
    assert.deepEqual(JSON.parse(decode(out.stdout)), {
      pools: [{
        name: "mongodb_internal_service",
        listenerAddress: ":27017",
        backends: [
          { address: "127.0.0.2:30017", service: "development/mongodb-service", node: "node-a" },
          { address: "127.0.0.3:30017", service: "development/mongodb-service", node: "node-b" },
        ],
        excluded: [],
        warnings: [],
      }],
      warnings: [],
    });
  });
});

Deno.test("discover --watch prints a NotReady node's removal with its reason", async () => {
  await withCluster(async (fake, config) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "src/main.ts", "discover", "-c", config, "--watch"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let stdout = "";
    const reading = (async () => {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) stdout += chunk;
    })();
    const stderr = new Response(child.stderr).text();
    const until = async (what: string, check: () => boolean) => {
      const deadline = performance.now() + 15_000;
      while (!check()) {
        if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
        await delay(10);
      }
    };
    try {
      await until("the first table", () => stdout.includes("127.0.0.3:30017"));
      const t0 = performance.now();
      fake.upsert(node("node-a", "127.0.0.2", "False"));
      await until("the removal", () => stdout.includes("- 127.0.0.2:30017"));
      const ms = performance.now() - t0;
      assert.match(
        stdout,
        /Z {2}mongodb_internal_service {2}- 127\.0\.0\.2:30017 {2}development\/mongodb-service node-a {2}node-not-ready \(Ready condition is False\)/,
      );
      assert.ok(ms < 1000, `the change took ${ms} ms`);
      fake.upsert(node("node-a", "127.0.0.2", "True"));
      await until("the return", () => stdout.includes("+ 127.0.0.2:30017"));
    } finally {
      child.kill("SIGTERM");
      const status = await child.status;
      await reading;
      const err = await stderr;
      assert.equal(status.code, 0, err);
    }
  });
});

Deno.test("discover exits 2 with a clear message when the kubeconfig does not exist", async () => {
  await withCluster(async (_fake, config) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "src/main.ts", "discover", "-c", config, "--kubeconfig", "/nonexistent"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2);
    assert.equal(
      decode(out.stderr),
      "nautiluslb: Cannot discover from Kubernetes: Cannot read kubeconfig '/nonexistent': file does not exist\n",
    );
  });
});
