/**
 * The Kubernetes manifests bind what the shipped config asks for. Each overlay is rendered
 * with kustomize; its container runs the image's entrypoint with the container's args under
 * the credentials the kubelet (containerd + runc) gives the pod's security context: uid and
 * gid, the bounding set (runtime defaults minus `drop` plus `add`), empty inheritable and
 * ambient sets (Kubernetes never sets ambient capabilities: kubernetes/kubernetes#56374), and
 * no_new_privs when `allowPrivilegeEscalation: false`. Pod sysctls apply in the pod's own
 * network namespace; a hostNetwork pod gets the host's defaults. `serve --dry-run` then binds
 * every listener of the shipped config (:80, :443) and the admin address.
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import {
  type Credentials,
  deployTest,
  missingFor,
  NamedServer,
  Netns,
  readableRuntime,
  REPO_ROOT,
  setprivArgs,
  sh,
} from "./_deploy.ts";

// deno-lint-ignore no-explicit-any
type Obj = any;

/** containerd's default capabilities for a container (its `oci.WithDefaultCapabilities`). */
const RUNTIME_DEFAULT_CAPS = [
  "chown",
  "dac_override",
  "fsetid",
  "fowner",
  "mknod",
  "net_raw",
  "setgid",
  "setuid",
  "setfcap",
  "setpcap",
  "net_bind_service",
  "sys_chroot",
  "kill",
  "audit_write",
];
/** The image's USER (Dockerfile). */
const IMAGE_UID = 1993;
const OVERLAYS = ["edge", "deployment", "namespaced"] as const;

async function render(overlay: string): Promise<Obj[]> {
  const text = await sh("kubectl", ["kustomize", `deploy/kubernetes/overlays/${overlay}`], {
    cwd: REPO_ROOT,
  });
  return parseAllDocuments(text).map((d) => d.toJSON());
}

/** The credentials a kubelet gives `container` of `pod` (see the module doc). */
function kubeletCredentials(pod: Obj, container: Obj): Credentials {
  const psc = pod.securityContext ?? {};
  const csc = container.securityContext ?? {};
  const uid: number = csc.runAsUser ?? psc.runAsUser ?? IMAGE_UID;
  const gid: number = csc.runAsGroup ?? psc.runAsGroup ?? (uid === 0 ? 0 : IMAGE_UID);
  const lower = (caps: string[] | undefined) => (caps ?? []).map((c) => c.toLowerCase());
  const drop = lower(csc.capabilities?.drop);
  const add = lower(csc.capabilities?.add);
  const base = drop.includes("all") ? [] : RUNTIME_DEFAULT_CAPS.filter((c) => !drop.includes(c));
  return {
    uid,
    gid,
    bounding: [...new Set([...base, ...add])],
    inheritable: [],
    ambient: [],
    noNewPrivs: csc.allowPrivilegeEscalation === false,
  };
}

/** The image's ENTRYPOINT: the launcher's `deno run …` line, from the entrypoint script. */
async function entrypointDenoArgs(): Promise<string[]> {
  const script = await Deno.readTextFile(`${REPO_ROOT}deploy/container/entrypoint.sh`);
  const line = /exec deno run ([^\n\\]+)\\\n\s+(\S+) "\$@"/.exec(script);
  assert.ok(line, "entrypoint's exec line");
  return ["run", ...line[1]!.trim().split(/\s+/)];
}

/** Expands `$(VAR)` in container args as the kubelet does. */
function expand(arg: string, env: Record<string, string>): string {
  return arg.replace(/\$\(([A-Z_]+)\)/g, (_, name: string) => env[name] ?? `$(${name})`);
}

/**
 * Runs the container's command with `credentials` in a fresh network namespace (with the
 * pod's sysctls unless hostNetwork) as `serve --dry-run`; returns exit code and output.
 */
async function dryRunAs(
  objects: Obj[],
  workload: Obj,
  credentials: Credentials,
  octet: number,
): Promise<{ code: number; output: string }> {
  const pod = workload.spec.template.spec;
  const container = pod.containers[0];
  const config = objects.find((o) =>
    o.kind === "ConfigMap" && o.metadata.name === "nautiluslb-config"
  );
  const ns = await Netns.create(`k8s${octet}`, octet);
  const runtime = await readableRuntime(credentials.uid);
  const http = new NamedServer(ns.hostIp, "http");
  const https = new NamedServer(ns.hostIp, "https");
  const backends = { http: http.port, https: https.port };
  try {
    if (pod.hostNetwork !== true) {
      for (const { name, value } of pod.securityContext?.sysctls ?? []) {
        await ns.sysctl(name, value);
      }
    }
    const etc = `${runtime.dir}/etc`;
    await Deno.mkdir(etc);
    await Deno.writeTextFile(`${etc}/config.yaml`, config.data["config.yaml"]);
    await Deno.writeTextFile(`${etc}/cluster.yaml`, clusterYaml(ns.hostIp, backends));
    await sh("chmod", ["-R", "a+rX", etc]);
    const deno = (await entrypointDenoArgs()).map((a) =>
      a === "/app/src/main.ts" ? `${runtime.app}/src/main.ts` : a
    );
    const args = (container.args as string[]).map((a) =>
      expand(a, { POD_IP: ns.nsIp }).replace("/etc/nautiluslb/", `${etc}/`)
    );
    const argv = ns.exec([
      ...setprivArgs(credentials),
      runtime.deno,
      ...deno,
      ...args,
      "--dry-run",
      `--from-manifests=${etc}/cluster.yaml`,
    ]);
    const out = await new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      env: { DENO_DIR: runtime.denoDir, HOME: "/root", NO_COLOR: "1", PATH: "/usr/bin:/bin" },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const output = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return { code: out.code, output };
  } finally {
    await http.close();
    await https.close();
    await runtime.close();
    await ns.close();
  }
}

/**
 * An annotated ClusterIP Service in `production`, bound to both listeners, whose `http` and `https` ports are test
 * backends on `ip`, so every pool has a healthy backend.
 */
function clusterYaml(ip: string, ports: { http: number; https: number }): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: production
  annotations:
    nautiluslb.cloudresty.io/enabled: "true"
    nautiluslb.cloudresty.io/configurations: "http,https"
spec:
  type: ClusterIP
  clusterIP: ${ip}
  clusterIPs: [${ip}]
  ports:
    - { name: http, port: ${ports.http}, protocol: TCP, targetPort: 8080 }
    - { name: https, port: ${ports.https}, protocol: TCP, targetPort: 8443 }
`;
}

function workloadOf(objects: Obj[]): Obj {
  const workload = objects.find((o) => o.kind === "DaemonSet" || o.kind === "Deployment");
  assert.ok(workload, "a DaemonSet or Deployment");
  return workload;
}

const NEEDS = { tools: ["kubectl", "setpriv", "ip"], root: true };

OVERLAYS.forEach((overlay, i) => {
  deployTest(
    `overlay ${overlay}: the container binds :80, :443 and its admin address with the kubelet's credentials`,
    NEEDS,
    async () => {
      const objects = await render(overlay);
      const workload = workloadOf(objects);
      const pod = workload.spec.template.spec;
      const credentials = kubeletCredentials(pod, pod.containers[0]);
      const { code, output } = await dryRunAs(objects, workload, credentials, 60 + i);
      assert.equal(code, 0, output);
      assert.doesNotMatch(output, /Permission denied|cannot bind/i, output);
    },
  );
});

deployTest(
  "the old manifest's credentials reproduce 'Permission denied' (kubernetes#56374)",
  NEEDS,
  async () => {
    // deploy/kubernetes/deployment.yaml before this change: hostNetwork, uid 1993, NET_BIND_SERVICE
    // added, allowPrivilegeEscalation: false.
    const objects = await render("edge");
    const workload = workloadOf(objects);
    const pod = {
      ...workload.spec.template.spec,
      securityContext: { runAsNonRoot: true, runAsUser: 1993 },
    };
    const container = {
      ...pod.containers[0],
      securityContext: {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] },
      },
    };
    const patched = {
      ...workload,
      spec: { ...workload.spec, template: { spec: { ...pod, containers: [container] } } },
    };
    const { code, output } = await dryRunAs(
      objects,
      patched,
      kubeletCredentials(pod, container),
      63,
    );
    assert.notEqual(code, 0, output);
    assert.match(output, /Permission denied/, output);
  },
);

Deno.test("manifests: least privilege, no two replicas per node, PDB, spread, config followed", async () => {
  const missing = missingFor({ tools: ["kubectl"] });
  if (missing !== undefined) {
    console.error(`skipped: manifests checks: needs ${missing}`);
    return;
  }
  for (const overlay of OVERLAYS) {
    const objects = await render(overlay);
    const workload = workloadOf(objects);
    const pod = workload.spec.template.spec;
    const container = pod.containers[0];
    const csc = container.securityContext;
    assert.equal(csc.allowPrivilegeEscalation, false, overlay);
    assert.equal(csc.readOnlyRootFilesystem, true, overlay);
    assert.deepEqual(csc.capabilities.drop, ["ALL"], overlay);
    assert.ok((csc.capabilities.add ?? []).every((c: string) => c === "NET_BIND_SERVICE"), overlay);
    assert.equal(pod.securityContext.seccompProfile.type, "RuntimeDefault", overlay);
    if (pod.hostNetwork !== true) assert.equal(pod.securityContext.runAsNonRoot, true, overlay);
    // The ConfigMap is followed: mounted as a directory (no subPath), serve --watch-config.
    assert.ok(container.args.includes("--watch-config"), overlay);
    const mount = container.volumeMounts.find((m: Obj) => m.mountPath === "/etc/nautiluslb");
    assert.equal(mount.subPath, undefined, overlay);
    // The admin address is the pod's (reachable off the node), never 0.0.0.0.
    assert.ok(container.args.includes("--admin-address=$(POD_IP):9090"), overlay);
    // RBAC: read-only verbs everywhere.
    for (const role of objects.filter((o) => o.kind === "ClusterRole" || o.kind === "Role")) {
      for (const rule of role.rules) {
        assert.deepEqual(rule.verbs, ["get", "list", "watch"], overlay);
      }
    }
    const policy = objects.find((o) => o.kind === "NetworkPolicy");
    const adminRule = policy.spec.ingress.find((r: Obj) =>
      r.ports.some((p: Obj) => p.port === 9090)
    );
    assert.ok(adminRule.from?.length > 0, "admin port admitted from Prometheus only");
    if (workload.kind === "Deployment") {
      const anti = pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0];
      assert.equal(anti.topologyKey, "kubernetes.io/hostname");
      assert.ok(pod.topologySpreadConstraints.length > 0);
      const pdb = objects.find((o) => o.kind === "PodDisruptionBudget");
      assert.deepEqual(pdb.spec.selector, workload.spec.selector);
    }
  }
  const namespaced = await render("namespaced");
  const clusterRole = namespaced.find((o) => o.kind === "ClusterRole");
  assert.deepEqual(clusterRole.rules.map((r: Obj) => r.resources).flat(), ["nodes"]);
  assert.ok(
    namespaced.some((o) => o.kind === "RoleBinding" && o.metadata.namespace === "production"),
  );
});
