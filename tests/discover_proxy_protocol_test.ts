/**
 * `discover` shows the PROXY protocol each backend gets: in the JSON contract and in the
 * `--explain` table, with a bad annotation value as a warning.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

const MANIFESTS = `
apiVersion: v1
kind: Service
metadata:
  name: ingress
  namespace: web
  annotations:
    nautiluslb.cloudresty.io/enabled: "true"
    nautiluslb.cloudresty.io/proxy-protocol: "v2"
spec:
  type: ClusterIP
  clusterIP: 10.96.0.20
  ports: [{ name: http, protocol: TCP, port: 80 }]
---
apiVersion: v1
kind: Service
metadata:
  name: typo
  namespace: web
  annotations:
    nautiluslb.cloudresty.io/enabled: "true"
    nautiluslb.cloudresty.io/proxy-protocol: "2"
spec:
  type: ClusterIP
  clusterIP: 10.96.0.21
  ports: [{ name: http, protocol: TCP, port: 80 }]
`;

const CONFIG = `settings:
  logLevel: warning
  adminAddress: ""
configurations:
  - name: web
    listenerAddress: ":8080"
    backendPortName: http
    backendMode: clusterip
`;

async function discover(...args: string[]): Promise<Deno.CommandOutput> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/config.yaml`, CONFIG);
    await Deno.writeTextFile(`${dir}/cluster.yaml`, MANIFESTS);
    return await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
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
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const WARNING =
  'Ignoring annotation nautiluslb.cloudresty.io/proxy-protocol of Service web/typo: "2" is not one of v1, v2, off; using off';

Deno.test("discover -o json shows proxyProtocol per backend and warns about a bad value", async () => {
  const out = await discover("-o", "json");
  assert.equal(out.code, 0, decode(out.stderr));
  const json = JSON.parse(decode(out.stdout));
  assert.deepEqual(json.pools[0].backends, [
    { address: "10.96.0.20:80", service: "web/ingress", proxyProtocol: "v2" },
    { address: "10.96.0.21:80", service: "web/typo" },
  ]);
  assert.ok(json.pools[0].warnings.includes(WARNING), JSON.stringify(json.pools[0].warnings));
});

Deno.test("discover --explain lists the backends that get a PROXY header", async () => {
  const out = await discover("--explain");
  assert.equal(out.code, 0, decode(out.stderr));
  const text = decode(out.stdout);
  const section = text.slice(text.indexOf("Sent a PROXY protocol header:"));
  const rows = section.split("\n").slice(1, 3).map((line) => line.trim().split(/\s+/));
  assert.deepEqual(rows, [
    ["POOL", "BACKEND", "SERVICE", "PROXY", "PROTOCOL"],
    ["web", "10.96.0.20:80", "web/ingress", "v2"],
  ]);
  assert.ok(text.includes(`warning: web: ${WARNING}`), text);
});
