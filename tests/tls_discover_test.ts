/**
 * `discover --from-manifests` through the real CLI for a `tls` listener: each route is a
 * pool `listener/route`, resolved by its own `backendPortName` or the listener's, with the
 * reasons `--explain` gives for any other pool.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

const CONFIG = `settings:
  adminAddress: ""
configurations:
  - name: edge
    listenerAddress: ":443"
    protocol: tls
    backendPortName: https
    tls:
      defaultRoute: web
      routes:
        - { name: api, hosts: [api.example.com], backendPortName: api-tls }
        - { name: web, hosts: ["*.example.com"] }
        - { name: legacy, hosts: [old.example.org], backends: ["192.0.2.10:8443"] }
`;

const MANIFESTS = `apiVersion: v1
kind: Node
metadata: { name: node-a }
status:
  addresses: [{ type: InternalIP, address: 10.0.0.1 }]
  conditions: [{ type: Ready, status: "True" }]
---
apiVersion: v1
kind: Service
metadata:
  name: gateway
  namespace: prod
  annotations: { nautiluslb.cloudresty.io/enabled: "true" }
spec:
  type: NodePort
  clusterIP: 10.96.0.20
  ports:
    - { name: https, protocol: TCP, port: 443, nodePort: 30443 }
    - { name: api-tls, protocol: TCP, port: 8443, nodePort: 30844 }
`;

async function discover(...args: string[]) {
  return await discoverWith(CONFIG, MANIFESTS, ...args);
}

async function discoverWith(config: string, manifests: string, ...args: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb_tls_discover_" });
  try {
    await Deno.writeTextFile(`${dir}/config.yaml`, config);
    await Deno.writeTextFile(`${dir}/cluster.yaml`, manifests);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "src/main.ts",
        "discover",
        "-c",
        `${dir}/config.yaml`,
        "--from-manifests",
        `${dir}/cluster.yaml`,
        ...args,
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("discover shows one pool per tls route, each with its port name's backends", async () => {
  const { code, stdout, stderr } = await discover();
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^edge\/api +:443 +10\.0\.0\.1:30844 +prod\/gateway +node-a$/m);
  assert.match(stdout, /^edge\/web +:443 +10\.0\.0\.1:30443 +prod\/gateway +node-a$/m);
  assert.match(stdout, /^edge\/legacy +:443 +192\.0\.2\.10:8443 +- +-$/m);
  assert.doesNotMatch(stdout, /^edge +/m);
});

Deno.test("discover -o json names route pools listener/route", async () => {
  const { code, stdout, stderr } = await discover("-o", "json");
  assert.equal(code, 0, stderr);
  const parsed = JSON.parse(stdout) as { pools: { name: string }[] };
  assert.deepEqual(parsed.pools.map((p) => p.name), ["edge/api", "edge/web", "edge/legacy"]);
});

Deno.test("discover: with explicit binding a Service joins the route pools its annotation names", async () => {
  const config = CONFIG.replace(
    "    protocol: tls\n",
    "    protocol: tls\n    binding: explicit\n",
  );
  const bound = MANIFESTS.replace(
    `annotations: { nautiluslb.cloudresty.io/enabled: "true" }`,
    `annotations:
    nautiluslb.cloudresty.io/enabled: "true"
    nautiluslb.cloudresty.io/configurations: "edge/api"`,
  );
  const { code, stdout, stderr } = await discoverWith(config, bound, "--explain");
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^edge\/api +:443 +10\.0\.0\.1:30844 +prod\/gateway +node-a$/m);
  assert.doesNotMatch(stdout, /^edge\/web +:443 +10\.0\.0\.1/m);
  assert.match(stdout, /edge\/web.*prod\/gateway.*not-bound-to-listener/);
});
