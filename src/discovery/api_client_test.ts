import assert from "node:assert/strict";
import {
  ApiClient,
  ApiError,
  apiError,
  classifyError,
  GoneError,
  InvalidResponseError,
} from "./api_client.ts";
import { loadKubeConfig } from "./kubeconfig.ts";

Deno.test("apiError() names 401/403 and turns 410 into GoneError", () => {
  const unauthorized = apiError(401, { message: "Unauthorized" }, "GET /api/v1/nodes");
  assert.equal(unauthorized.message, "GET /api/v1/nodes returned 401: Unauthorized");
  assert.equal(classifyError(unauthorized), "unauthorized");
  const forbidden = apiError(403, { message: "nodes is forbidden" }, "GET /api/v1/nodes");
  assert.equal(forbidden.message, "GET /api/v1/nodes returned 403: Forbidden: nodes is forbidden");
  assert.equal(classifyError(forbidden), "forbidden");
  const gone = apiError(410, { message: "too old resource version: 1 (9)" }, "GET x");
  assert.ok(gone instanceof GoneError);
  assert.equal(gone.status, 410);
  assert.equal(classifyError(apiError(500, {}, "GET x")), "server-error");
  assert.equal(apiError(502, {}, "GET x").message, "GET x returned 502: HTTP 502");
});

Deno.test("classifyError() tells bad bodies, timeouts and unreachable apart", () => {
  assert.equal(classifyError(new InvalidResponseError("no list")), "invalid-response");
  assert.equal(classifyError(new DOMException("slow", "TimeoutError")), "timeout");
  assert.equal(classifyError(new TypeError("error sending request")), "unreachable");
  assert.equal(classifyError(new ApiError("x", 429)), "server-error");
});

Deno.test("ApiClient.get() reads JSON and keeps a redacted excerpt of anything else", async () => {
  const ac = new AbortController();
  const held: (() => void)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (req.headers.get("authorization") !== "Bearer t0k") {
      return new Response("no", { status: 401 });
    }
    if (path === "/json") return Response.json({ kind: "NodeList", items: [] });
    if (path === "/slow") {
      return new Promise<Response>((resolve) => held.push(() => resolve(new Response("late"))));
    }
    return new Response("<html>token: t0k</html>", { headers: { "content-type": "text/html" } });
  });
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb-api-client-test-" });
  try {
    await Deno.writeTextFile(
      `${dir}/config`,
      [
        "clusters: [{ name: c, cluster: { server: 'http://127.0.0.1:" + server.addr.port +
        "', insecure-skip-tls-verify: true } }]",
        "users: [{ name: c, user: { token: t0k } }]",
        "contexts: [{ name: c, context: { cluster: c, user: c } }]",
        "current-context: c",
      ].join("\n"),
    );
    const credentials = await loadKubeConfig({ kubeconfigPath: `${dir}/config` });
    const client = new ApiClient({ credentials, signal: ac.signal, requestTimeoutMs: 300 });
    const json = await client.get("/json");
    assert.deepEqual(json, {
      status: 200,
      body: { kind: "NodeList", items: [] },
      isJson: true,
    });
    const html = await client.get("/html");
    assert.equal(html.isJson, false);
    // Over-redaction is the safe side: the value runs to the next space.
    assert.deepEqual(html.body, { message: "<html>token: [redacted]" });
    await assert.rejects(client.get("/slow"), { name: "TimeoutError" });
    client.close();
  } finally {
    ac.abort();
    for (const release of held) release();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
