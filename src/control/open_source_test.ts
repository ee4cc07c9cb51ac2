import assert from "node:assert/strict";
import { parseConfig } from "../config/mod.ts";
import { PlanSourceError } from "./errors.ts";
import { openSource } from "./open_source.ts";

function config(text: string) {
  const result = parseConfig(text, "test.yaml");
  assert.ok(result.ok);
  return result.config;
}

const KUBERNETES = config(`
configurations:
  - name: web
    listenerAddress: "127.0.0.1:8080"
    backendPortName: http
`);

Deno.test("openSource() refuses unreadable manifests with the reader's message, the path once", async () => {
  const error = await openSource(KUBERNETES, { fromManifests: "no/such/dir" }, AbortSignal.abort())
    .then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof PlanSourceError, String(error));
  assert.equal(error.failure, "unreadable");
  assert.match(error.message, /^Cannot read manifests from "no\/such\/dir": /);
  assert.equal(error.message.split("no/such/dir").length, 2, error.message);
});

Deno.test("openSource() stops waiting for the first Kubernetes sync when the signal aborts", async () => {
  // An API server that accepts and never answers: the first list waits until the abort.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  const dir = await Deno.makeTempDir();
  const kubeconfig = `${dir}/kubeconfig`;
  await Deno.writeTextFile(
    kubeconfig,
    `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "http://127.0.0.1:${silent.addr.port}" } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
current-context: x
`,
  );
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error("stop")), 200);
  try {
    const error = await openSource(KUBERNETES, { kubeconfig }, controller.signal)
      .then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof PlanSourceError, String(error));
    assert.equal(error.failure, "stopped");
  } finally {
    clearTimeout(timer);
    silent.close();
    await accepting.catch(() => {});
    for (const conn of held) conn.close();
    await Deno.remove(dir, { recursive: true });
  }
});
