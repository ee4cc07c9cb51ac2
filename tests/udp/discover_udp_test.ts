/**
 * `discover` with a kube-dns style Service (`dns` UDP 53, `dns-tcp` TCP 53) and a tcp and a udp
 * listener on `:53`: each pool takes the port of its transport, `--explain` names the twin
 * of a port in the wrong transport, JSON carries `protocol`.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

const MANIFESTS = `apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  annotations:
    nautiluslb.cloudresty.io/enabled: "true"
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  ports:
  - {name: dns, protocol: UDP, port: 53, nodePort: 30053}
  - {name: dns-tcp, protocol: TCP, port: 53, nodePort: 30054}
---
apiVersion: v1
kind: Node
metadata:
  name: n1
status:
  conditions: [{type: Ready, status: "True"}]
  addresses: [{type: InternalIP, address: 10.0.0.1}]
`;

const CONFIG = `configurations:
  - name: dns-tcp
    listenerAddress: ":53"
    backendPortName: dns-tcp
    namespaces: [kube-system]
  - name: dns
    listenerAddress: ":53"
    protocol: udp
    backendPortName: dns
    namespaces: [kube-system]
  - name: wrong
    listenerAddress: ":5353"
    protocol: udp
    backendPortName: dns-tcp
    namespaces: [kube-system]
`;

async function discover(dir: string, ...args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      new URL("src/main.ts", ROOT).pathname,
      "discover",
      "-c",
      `${dir}/config.yaml`,
      "--from-manifests",
      `${dir}/manifests`,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

Deno.test("discover udp: pools by transport, the twin named, protocol in JSON", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nlb-udp-" });
  try {
    await Deno.mkdir(`${dir}/manifests`);
    await Deno.writeTextFile(`${dir}/manifests/dns.yaml`, MANIFESTS);
    await Deno.writeTextFile(`${dir}/config.yaml`, CONFIG);

    const table = await discover(dir, "--explain");
    assert.equal(table.stderr, "");
    const rows = table.stdout.split("\n");
    assert.ok(rows.some((r) => /^dns-tcp\s+:53\s+10\.0\.0\.1:30054\s/.test(r)), table.stdout);
    assert.ok(rows.some((r) => /^dns\s+:53\/udp\s+10\.0\.0\.1:30053\s/.test(r)), table.stdout);
    assert.match(
      table.stdout,
      /port "dns-tcp" is TCP; a udp listener takes UDP ports; port "dns" is UDP on the same number/,
    );

    const json = await discover(dir, "-o", "json");
    const pools = JSON.parse(json.stdout).pools as {
      name: string;
      protocol?: string;
      backends: { address: string }[];
    }[];
    assert.deepEqual(
      pools.map((p) => [p.name, p.protocol, p.backends.map((b) => b.address)]),
      [
        ["dns-tcp", undefined, ["10.0.0.1:30054"]],
        ["dns", "udp", ["10.0.0.1:30053"]],
        ["wrong", "udp", []],
      ],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
