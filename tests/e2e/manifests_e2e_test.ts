/**
 * Every shipped Kubernetes manifest passes server-side dry-run on a real kube-apiserver:
 * the three overlays of deploy/kubernetes and deploy/monitoring, rendered by kustomize
 * (`kubectl kustomize`), sent with `kubectl apply --dry-run=server`.
 *
 * The apiserver here is Debian's (1.20): it serves PodDisruptionBudget only as policy/v1beta1,
 * so the PDB (policy/v1, served since 1.21 and the only version since 1.25) is checked
 * under v1beta1 there, with the same spec. Custom resources (the Prometheus Operator's
 * PodMonitor and PrometheusRule) are left out: that build crashes encoding any custom
 * resource (modern-go/reflect2 before 1.0.2 under Go 1.18 and later), so
 * tests/deploy/monitoring_test.ts checks them instead (promtool, equality with rules.yaml).
 */
import assert from "node:assert/strict";
import { parseAllDocuments, stringify } from "yaml";
import { e2eSkipReason, KubeCluster } from "./_cluster.ts";

const skipReason = e2eSkipReason();
if (skipReason) console.warn(`manifests e2e skipped: ${skipReason}`);

const ROOT = new URL("../../", import.meta.url).pathname;
const TARGETS = [
  "deploy/kubernetes/overlays/edge",
  "deploy/kubernetes/overlays/deployment",
  "deploy/kubernetes/overlays/namespaced",
  "deploy/monitoring",
];

async function kubectl(args: readonly string[], kubeconfig?: string): Promise<string> {
  const out = await new Deno.Command("kubectl", {
    args: [...(kubeconfig === undefined ? [] : ["--kubeconfig", kubeconfig]), ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const error = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `kubectl ${args.join(" ")}: ${error}${text}`);
  return text;
}

/** API groups whose objects this apiserver cannot handle (see the module doc). */
const CUSTOM_GROUPS = ["monitoring.coreos.com/"];

Deno.test({
  name: "every shipped manifest passes server-side dry-run on kube-apiserver",
  ignore: skipReason !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using cluster = await KubeCluster.start();
    const kc = cluster.adminKubeconfig;
    const dir = await Deno.makeTempDir({ prefix: "nautiluslb-manifests-" });
    try {
      // What exists before these manifests: the namespace the namespaced overlay reads.
      await cluster.ensureNamespace("production");
      const versions = (await kubectl(["api-versions"], kc)).split("\n");
      const hasPolicyV1 = versions.includes("policy/v1");

      for (const target of TARGETS) {
        const objects = parseAllDocuments(await kubectl(["kustomize", target])).map((d) =>
          d.toJSON()
        ).filter((o) => !CUSTOM_GROUPS.some((g) => o.apiVersion.startsWith(g)));
        for (const o of objects) {
          if (o.kind === "PodDisruptionBudget" && !hasPolicyV1) o.apiVersion = "policy/v1beta1";
        }
        const file = `${dir}/${target.replaceAll("/", "_")}.yaml`;
        await Deno.writeTextFile(file, objects.map((o) => stringify(o)).join("---\n"));
        const out = await kubectl(["apply", "--dry-run=server", "-f", file], kc);
        const lines = out.trim().split("\n");
        assert.equal(lines.length, objects.length, out);
        for (const line of lines) assert.match(line, /\(server dry run\)$/, out);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
