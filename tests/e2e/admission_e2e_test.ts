/**
 * Who may reach what, on a real kube-apiserver: under `binding: explicit` with `namespaces`,
 * a tenant's Service in a namespace that is not allowed and a Service without the binding
 * annotation never receive a connection, and `discover --explain` says why. The LB runs as a
 * ServiceAccount bound only to namespaced Roles (Services, EndpointSlices, Endpoints) plus a
 * ClusterRole for Nodes: the namespaced-RBAC variant of the manifests.
 *
 * The CLI runs with the documented permissions only (`--allow-net --allow-read --allow-env`).
 * Skipped with a message when the binary is not built (scripts/kube_apiserver_build.sh).
 */
import assert from "node:assert/strict";
import { CliProcess, runCli } from "./_cli.ts";
import { e2eSkipReason, KubeCluster, nodeObject, serviceObject } from "./_cluster.ts";
import { closeQuietly, freePort, readAll, waitUntil, withTimeout } from "../_helpers.ts";

const skipReason = e2eSkipReason();
if (skipReason) console.warn(`admission e2e skipped: ${skipReason}`);

const READ = ["get", "list", "watch"];

/** A "node" port: answers `name` and closes; counts connections. */
function startNodePort(name: string, hostname: string, port: number) {
  const listener = Deno.listen({ hostname, port });
  const state = { connections: 0 };
  (async () => {
    for await (const conn of listener) {
      state.connections++;
      conn.write(new TextEncoder().encode(name)).catch(() => {}).finally(() => closeQuietly(conn));
    }
  })().catch(() => {});
  return { listener, state };
}

async function ask(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    return new TextDecoder().decode(await withTimeout(readAll(conn), 5000, "answer"));
  } finally {
    closeQuietly(conn);
  }
}

/**
 * A ServiceAccount `nautiluslb/nautiluslb-namespaced` that may read Services, EndpointSlices
 * and Endpoints in `namespaces` only, and Nodes cluster-wide; returns a kubeconfig with its
 * token.
 */
async function namespacedIdentity(
  cluster: KubeCluster,
  namespaces: readonly string[],
  dir: string,
): Promise<string> {
  const sa = "nautiluslb-namespaced";
  const rbac = "/apis/rbac.authorization.k8s.io/v1";
  const subject = { kind: "ServiceAccount", name: sa, namespace: "nautiluslb" };
  await cluster.request("POST", "/api/v1/namespaces/nautiluslb/serviceaccounts", {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: sa, namespace: "nautiluslb" },
  });
  await cluster.request("POST", `${rbac}/clusterroles`, {
    kind: "ClusterRole",
    metadata: { name: `${sa}-nodes` },
    rules: [{ apiGroups: [""], resources: ["nodes"], verbs: READ }],
  });
  await cluster.request("POST", `${rbac}/clusterrolebindings`, {
    kind: "ClusterRoleBinding",
    metadata: { name: `${sa}-nodes` },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: `${sa}-nodes` },
    subjects: [subject],
  });
  for (const ns of namespaces) {
    await cluster.request("POST", `${rbac}/namespaces/${ns}/roles`, {
      kind: "Role",
      metadata: { name: sa, namespace: ns },
      rules: [
        { apiGroups: [""], resources: ["services", "endpoints"], verbs: READ },
        { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: READ },
      ],
    });
    await cluster.request("POST", `${rbac}/namespaces/${ns}/rolebindings`, {
      kind: "RoleBinding",
      metadata: { name: sa, namespace: ns },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: sa },
      subjects: [subject],
    });
  }
  const token = await cluster.request(
    "POST",
    `/api/v1/namespaces/nautiluslb/serviceaccounts/${sa}/token`,
    { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: {} },
  );
  const ca = await Deno.readTextFile(cluster.caFiles.cert);
  const path = `${dir}/namespaced.kubeconfig`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{
        name: "local",
        cluster: { server: cluster.server, "certificate-authority-data": btoa(ca) },
      }],
      users: [{ name: sa, user: { token: (token.status as { token: string }).token } }],
      contexts: [{ name: "lb", context: { cluster: "local", user: sa } }],
      "current-context": "lb",
    }),
  );
  return path;
}

Deno.test({
  name: "explicit binding and namespaces on a real kube-apiserver with namespaced RBAC",
  ignore: skipReason !== undefined,
  async fn(t) {
    await using cluster = await KubeCluster.start();
    for (const ns of ["shop", "tenant", "elsewhere"]) await cluster.ensureNamespace(ns);
    await cluster.create(nodeObject("node-a", { address: "127.0.0.2" }));
    const https = (name: string) => ({
      ports: [{ name: "https", port: 443, targetPort: 8443 }],
      name,
    });
    const bound = {
      "nautiluslb.cloudresty.io/enabled": "true",
      "nautiluslb.cloudresty.io/configurations": "https",
    };
    const created = {
      web: await cluster.create(
        serviceObject("shop", "web", { ...https("web"), annotations: bound }),
      ),
      unbound: await cluster.create(
        serviceObject("shop", "unbound", {
          ...https("unbound"),
          annotations: { "nautiluslb.cloudresty.io/enabled": "true" },
        }),
      ),
      intruder: await cluster.create(
        serviceObject("tenant", "intruder", { ...https("intruder"), annotations: bound }),
      ),
      // In a namespace no listener lists: the LB may not even read it.
      hidden: await cluster.create(
        serviceObject("elsewhere", "hidden", { ...https("hidden"), annotations: bound }),
      ),
    };
    const nodePortOf = (s: typeof created.web) =>
      (s.spec as { ports: { nodePort: number }[] }).ports[0]!.nodePort;
    const nodes = Object.entries(created).map(([name, s]) =>
      startNodePort(name, "127.0.0.2", nodePortOf(s))
    );
    const dir = await Deno.makeTempDir({ prefix: "nautiluslb-admission-" });
    const lbPort = freePort();
    let serve: CliProcess | undefined;
    try {
      const kubeconfig = await namespacedIdentity(cluster, ["shop", "tenant"], dir);
      const config = `${dir}/config.yaml`;
      await Deno.writeTextFile(
        config,
        `settings:
  kubeconfigPath: ${JSON.stringify(kubeconfig)}
  adminAddress: "127.0.0.1:${freePort()}"
  binding: explicit
configurations:
  - name: https
    listenerAddress: "127.0.0.1:${lbPort}"
    backendPortName: https
    namespaces: [shop]
    healthCheck: { enabled: false }
  - name: tenant-db
    listenerAddress: "127.0.0.1:${freePort()}"
    backendPortName: postgres
    namespaces: [tenant]
    healthCheck: { enabled: false }
`,
      );

      await t.step(
        "discover --explain names namespace-not-allowed and not-bound-to-listener",
        async () => {
          const out = await runCli(["discover", "-c", config, "--explain"]);
          assert.equal(out.code, 0, out.stderr);
          assert.match(out.stdout, /https .*127\.0\.0\.2:\d+ +shop\/web/);
          assert.match(out.stdout, /https +- +shop\/unbound +- +not-bound-to-listener/);
          assert.match(out.stdout, /https +- +tenant\/intruder +- +namespace-not-allowed/);
          assert.doesNotMatch(out.stdout + out.stderr, /elsewhere|hidden/);
          assert.doesNotMatch(out.stderr, /forbidden|403/i);
          const json = JSON.parse((await runCli(["discover", "-c", config, "-o", "json"])).stdout);
          const pool = json.pools.find((p: { name: string }) => p.name === "https");
          assert.deepEqual(pool.backends.map((b: { service: string }) => b.service), ["shop/web"]);
        },
      );

      await t.step("serve sends every connection to the bound Service only", async () => {
        serve = new CliProcess(["serve", "-c", config]);
        await waitUntil(
          async () => {
            try {
              return (await ask(lbPort)) === "web";
            } catch {
              return false;
            }
          },
          "serve accepts",
          20_000,
        );
        for (let i = 0; i < 20; i++) assert.equal(await ask(lbPort), "web");
        const [, unbound, intruder, hidden] = nodes;
        assert.equal(unbound!.state.connections, 0);
        assert.equal(intruder!.state.connections, 0);
        assert.equal(hidden!.state.connections, 0);
        assert.doesNotMatch(serve.stderr, /forbidden|403/i);
      });
    } finally {
      if (serve !== undefined) await serve.stop();
      for (const n of nodes) closeQuietly(n.listener);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
