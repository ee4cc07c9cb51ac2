/**
 * `serve` and `discover` end to end against a real kube-apiserver: client → NautilusLB →
 * "node" (127.0.0.2, 127.0.0.3 at the Service's nodePort) → backend.
 *
 * The CLI runs with the documented permissions only (`--allow-net --allow-read --allow-env`).
 * Skipped with a message when the binary is not built (scripts/kube_apiserver_build.sh).
 * `NAUTILUS_E2E_OUTAGE_MS` sets how long the apiserver stays down (default 20000).
 */
import assert from "node:assert/strict";
import { CliProcess, runCli } from "./_cli.ts";
import { e2eSkipReason, KubeCluster, nodeObject, serviceObject } from "./_cluster.ts";
import { closeQuietly, delay, freePort, readAll, waitUntil, withTimeout } from "../_helpers.ts";

const skipReason = e2eSkipReason();
if (skipReason) console.warn(`serve e2e skipped: ${skipReason}`);

const OUTAGE_MS = Number(Deno.env.get("NAUTILUS_E2E_OUTAGE_MS") ?? "20000");

/** A "node": answers its name at `host:port`, then closes. */
function startNode(name: string, hostname: string, port: number): Deno.TcpListener {
  const listener = Deno.listen({ hostname, port });
  (async () => {
    for await (const conn of listener) {
      conn.write(new TextEncoder().encode(name)).catch(() => {}).finally(() => closeQuietly(conn));
    }
  })().catch(() => {});
  return listener;
}

/** Connects through the LB; the node's name, or `""` when the LB closed the connection. */
async function ask(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    return new TextDecoder().decode(await withTimeout(readAll(conn), 5000, "answer"));
  } finally {
    closeQuietly(conn);
  }
}

Deno.test({
  name: "serve and discover against a real kube-apiserver",
  ignore: skipReason !== undefined,
  async fn(t) {
    await using cluster = await KubeCluster.start();
    await cluster.ensureNamespace("e2e");
    await cluster.create(nodeObject("node-a", { address: "127.0.0.2" }));
    await cluster.create(nodeObject("node-b", { address: "127.0.0.3" }));
    const web = await cluster.create(
      serviceObject("e2e", "web", { annotations: { "nautiluslb.cloudresty.io/enabled": "true" } }),
    );
    const nodePort = (web.spec as { ports: { nodePort: number }[] }).ports[0]!.nodePort;
    const nodes = [
      startNode("node-a", "127.0.0.2", nodePort),
      startNode("node-b", "127.0.0.3", nodePort),
    ];
    const lbPort = freePort();
    const dir = await Deno.makeTempDir();
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(
      config,
      `settings:
  kubeconfigPath: ${JSON.stringify(cluster.lbKubeconfig)}
  adminAddress: "127.0.0.1:${freePort()}"
configurations:
  - name: web
    listenerAddress: "127.0.0.1:${lbPort}"
    backendPortName: http
    namespace: e2e
    drainTimeout: 1s
    healthCheck: { interval: 200ms, timeout: 200ms }
`,
    );
    const a = `127.0.0.2:${nodePort}`;
    const b = `127.0.0.3:${nodePort}`;
    let serve: CliProcess | undefined;
    let watch: CliProcess | undefined;
    try {
      await t.step("discover -o json matches the cluster", async () => {
        const out = await runCli(["discover", "-c", config, "-o", "json"]);
        assert.equal(out.code, 0, out.stderr);
        const json = JSON.parse(out.stdout);
        assert.deepEqual(json.pools[0].backends, [
          { address: a, service: "e2e/web", node: "node-a" },
          { address: b, service: "e2e/web", node: "node-b" },
        ]);
      });

      serve = new CliProcess(["serve", "-c", config]);
      watch = new CliProcess(["discover", "-c", config, "--watch"]);
      await waitUntil(
        async () => {
          try {
            return (await ask(lbPort)).startsWith("node-");
          } catch {
            return false;
          }
        },
        "serve accepts",
        20_000,
      );
      await waitUntil(() => watch!.stdout.includes(b), "discover --watch printed the pool", 20_000);

      await t.step("serve routes to every Ready node", async () => {
        const seen = new Set<string>();
        for (let i = 0; i < 8; i++) seen.add(await ask(lbPort));
        assert.deepEqual([...seen].sort(), ["node-a", "node-b"]);
      });

      await t.step(
        "a node turning NotReady leaves discover --watch and serve within a second",
        async () => {
          const t0 = performance.now();
          await cluster.setNodeReady("node-a", "False");
          await waitUntil(
            () => watch!.stdout.includes(`- ${a}`),
            "discover --watch shows the removal",
            1000,
          );
          const watchMs = performance.now() - t0;
          assert.match(watch!.stdout, new RegExp(`- ${a.replaceAll(".", "\\.")}.*node-not-ready`));
          // New connections avoid node-a: 10 answers in a row from node-b.
          let streak = 0;
          await waitUntil(
            async () => {
              streak = (await ask(lbPort)) === "node-b" ? streak + 1 : 0;
              return streak >= 10;
            },
            "serve avoids node-a",
            1000,
          );
          const serveMs = performance.now() - t0;
          console.log(
            `NotReady -> discover --watch: ${watchMs.toFixed(0)} ms, serve: ${
              serveMs.toFixed(0)
            } ms`,
          );
        },
      );

      await t.step(`the apiserver down for ${OUTAGE_MS} ms: traffic keeps flowing`, async () => {
        await cluster.stopApiserver();
        const until = performance.now() + OUTAGE_MS;
        let answered = 0;
        while (performance.now() < until) {
          assert.equal(await ask(lbPort), "node-b");
          answered++;
          await delay(250);
        }
        assert.ok(answered > 0);
        await cluster.startApiserver();
        const t0 = performance.now();
        await cluster.setNodeReady("node-a", "True");
        await waitUntil(
          async () => (await ask(lbPort)) === "node-a",
          "node-a is back in the pool",
          45_000,
        );
        console.log(
          `change after the apiserver returned -> serve: ${(performance.now() - t0).toFixed(0)} ms`,
        );
        assert.ok(serve!.stderr.includes("Kubernetes API unreachable"), serve!.stderr);
      });

      await t.step("a deleted Service empties the pool: new connections are closed", async () => {
        await cluster.delete("Service", "e2e", "web");
        await waitUntil(async () => (await ask(lbPort)) === "", "pool empty", 5000);
      });

      await t.step("SIGTERM stops serve and discover --watch with exit 0", async () => {
        assert.equal(await serve!.stop(), 0, serve!.stderr);
        assert.equal(await watch!.stop(), 0, watch!.stderr);
        serve = undefined;
        watch = undefined;
      });
    } finally {
      await serve?.stop();
      await watch?.stop();
      for (const n of nodes) closeQuietly(n);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
