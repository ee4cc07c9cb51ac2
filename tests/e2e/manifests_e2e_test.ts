/**
 * Every shipped Kubernetes manifest passes server-side dry-run on a real kube-apiserver:
 * the three overlays of deploy/kubernetes and deploy/monitoring, rendered by kustomize
 * (`kubectl kustomize`), sent with `kubectl apply --dry-run=server -o yaml`.
 *
 * The apiserver here is Debian's (1.20): it serves PodDisruptionBudget only as policy/v1beta1,
 * so the PDB (policy/v1, served since 1.21 and the only version since 1.25) is checked
 * under v1beta1 there, with the same spec.
 *
 * The Prometheus Operator's PodMonitor and PrometheusRule are checked against stand-in CRDs
 * (tests/e2e/fixtures/monitoring_crds.yaml): structural schemas written for this test that type
 * the fields deploy/monitoring uses as the operator's API reference does, created and Established
 * on the apiserver first. A structural schema prunes a field it does not name without a word, so
 * the spec each custom resource comes back with must equal the spec sent; a copy with a misspelt
 * field shows that comparison fails, and values of the wrong type are refused by the server.
 * What the stand-ins cannot prove is that the operator's own CRDs agree with them.
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
const MONITORING_CRDS = "tests/e2e/fixtures/monitoring_crds.yaml";
const CUSTOM_GROUP = "monitoring.coreos.com/";

// deno-lint-ignore no-explicit-any
type Obj = any;

interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function runKubectl(args: readonly string[], kubeconfig?: string): Promise<KubectlResult> {
  const out = await new Deno.Command("kubectl", {
    args: [...(kubeconfig === undefined ? [] : ["--kubeconfig", kubeconfig]), ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function kubectl(args: readonly string[], kubeconfig?: string): Promise<string> {
  const { code, stdout, stderr } = await runKubectl(args, kubeconfig);
  assert.equal(code, 0, `kubectl ${args.join(" ")}: ${stderr}${stdout}`);
  return stdout;
}

/** The objects of a YAML stream, a `List`'s items in its place. */
function objectsOf(text: string): Obj[] {
  return parseAllDocuments(text).map((d) => d.toJSON()).filter((o) => o !== null).flatMap((
    o,
  ) => o.kind === "List" ? o.items : [o]);
}

/**
 * Sends `objects` with `kubectl apply --dry-run=server -o yaml` (plus `flags`); returns the
 * objects the server would store, in the order sent.
 */
async function dryRun(
  kubeconfig: string,
  file: string,
  objects: readonly Obj[],
  flags: readonly string[] = [],
): Promise<Obj[]> {
  await Deno.writeTextFile(file, objects.map((o) => stringify(o)).join("---\n"));
  const out = await kubectl(
    ["apply", "--dry-run=server", "-o", "yaml", ...flags, "-f", file],
    kubeconfig,
  );
  const returned = objectsOf(out);
  assert.equal(returned.length, objects.length, out);
  return objects.map((sent) => {
    const back = returned.find((r) =>
      r.kind === sent.kind && r.metadata.name === sent.metadata.name
    );
    assert.ok(back, `${sent.kind}/${sent.metadata.name} missing from the reply:\n${out}`);
    return back;
  });
}

/** The server kept every field of the custom resource's spec: none pruned, none changed. */
function assertSpecKept(sent: Obj, returned: Obj): void {
  assert.deepStrictEqual(returned.spec, sent.spec, `${sent.kind}/${sent.metadata.name}`);
}

Deno.test({
  name: "every shipped manifest passes server-side dry-run on kube-apiserver",
  ignore: skipReason !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using cluster = await KubeCluster.start();
    const kc = cluster.adminKubeconfig;
    const dir = await Deno.makeTempDir({ prefix: "nautiluslb-manifests-" });
    try {
      // What exists before these manifests: the namespace the namespaced overlay reads and the
      // CRDs of the custom resources, Established.
      await cluster.ensureNamespace("production");
      await kubectl(["apply", "-f", MONITORING_CRDS], kc);
      await kubectl(
        ["wait", "--for=condition=Established", "--timeout=60s", "-f", MONITORING_CRDS],
        kc,
      );
      const versions = (await kubectl(["api-versions"], kc)).split("\n");
      const hasPolicyV1 = versions.includes("policy/v1");
      const custom: Obj[] = [];

      await t.step("every target, the custom resources' specs kept", async () => {
        for (const target of TARGETS) {
          const objects = objectsOf(await kubectl(["kustomize", target]));
          for (const o of objects) {
            if (o.kind === "PodDisruptionBudget" && !hasPolicyV1) o.apiVersion = "policy/v1beta1";
          }
          const file = `${dir}/${target.replaceAll("/", "_")}.yaml`;
          const returned = await dryRun(kc, file, objects);
          objects.forEach((sent, i) => {
            if (!sent.apiVersion.startsWith(CUSTOM_GROUP)) return;
            assertSpecKept(sent, returned[i]);
            custom.push(sent);
          });
        }
        assert.deepEqual(custom.map((o) => o.kind).sort(), ["PodMonitor", "PrometheusRule"]);
      });

      const podMonitor = custom.find((o) => o.kind === "PodMonitor");
      const rule = custom.find((o) => o.kind === "PrometheusRule");

      await t.step("a misspelt field is pruned by the server and caught", async () => {
        // Sent without kubectl's own schema check, as a client without one would.
        const typo = structuredClone(podMonitor);
        typo.spec.podMetricEndpoints = typo.spec.podMetricsEndpoints;
        delete typo.spec.podMetricsEndpoints;
        const [returned] = await dryRun(kc, `${dir}/typo.yaml`, [typo], ["--validate=false"]);
        assert.equal(returned.spec.podMetricEndpoints, undefined);
        assert.throws(() => assertSpecKept(typo, returned), /podMetricEndpoints/);
      });

      await t.step("a value of the wrong type is refused by the server", async () => {
        const wrongInterval = structuredClone(podMonitor);
        wrongInterval.spec.podMetricsEndpoints[0].interval = 15;
        const wrongLabels = structuredClone(rule);
        wrongLabels.spec.groups[0].rules[0].labels = { severity: ["critical"] };
        const wrongFor = structuredClone(rule);
        wrongFor.spec.groups[0].rules[0].for = "15 seconds";
        const cases: [Obj, RegExp][] = [
          [wrongInterval, /spec\.podMetricsEndpoints(\[0\])?\.interval: Invalid value: "integer"/],
          [
            wrongLabels,
            /spec\.groups(\[0\])?\.rules(\[0\])?\.labels\.severity: Invalid value: "array"/,
          ],
          [wrongFor, /spec\.groups(\[0\])?\.rules(\[0\])?\.for: Invalid value: "15 seconds"/],
        ];
        for (const [object, refusal] of cases) {
          const file = `${dir}/wrong.yaml`;
          await Deno.writeTextFile(file, stringify(object));
          const { code, stdout, stderr } = await runKubectl(
            ["apply", "--dry-run=server", "--validate=false", "-f", file],
            kc,
          );
          assert.notEqual(code, 0, stdout);
          assert.match(stderr, refusal);
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
