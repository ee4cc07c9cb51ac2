import assert from "node:assert/strict";
import { ApiClient, InvalidResponseError } from "./api_client.ts";
import { loadKubeConfig } from "./kubeconfig.ts";
import { Reflector, RetryWaker } from "./reflector.ts";

const NODE = {
  metadata: { name: "n1", resourceVersion: "5" },
  status: { conditions: [{ type: "Ready", status: "True" }] },
};

/** A tiny API: the first list answers one Node, every watch 410s, later lists answer `body`. */
async function withApi(
  laterList: string,
  fn: (
    client: ApiClient,
    lists: () => number,
    signal: AbortSignal,
  ) => Promise<{ run: Promise<void> }>,
): Promise<void> {
  let listCount = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    if (url.searchParams.get("watch") === "1") {
      const gone = { type: "ERROR", object: { code: 410, message: "too old resource version" } };
      return new Response(JSON.stringify(gone) + "\n");
    }
    listCount++;
    if (listCount === 1) {
      return Response.json({ kind: "NodeList", metadata: { resourceVersion: "5" }, items: [NODE] });
    }
    return new Response(laterList);
  });
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb-reflector-test-" });
  const ac = new AbortController();
  try {
    await Deno.writeTextFile(
      `${dir}/config`,
      [
        `clusters: [{ name: c, cluster: { server: 'http://127.0.0.1:${server.addr.port}' } }]`,
        "users: [{ name: c, user: { token: t } }]",
        "contexts: [{ name: c, context: { cluster: c, user: c } }]",
        "current-context: c",
      ].join("\n"),
    );
    const credentials = await loadKubeConfig({ kubeconfigPath: `${dir}/config` });
    const client = new ApiClient({ credentials, signal: ac.signal });
    let run: Promise<void> | undefined;
    try {
      ({ run } = await fn(client, () => listCount, ac.signal));
    } finally {
      ac.abort();
      await run; // the loop ends with the signal and never rejects
      client.close();
    }
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

for (const [what, body] of [["{}", "{}"], ["an HTML page", "<html>login</html>"]] as const) {
  Deno.test(`Reflector keeps its store when a relist answers ${what}`, async () => {
    await withApi(body, async (client, lists, signal) => {
      const errors: unknown[] = [];
      let changes = 0;
      const reflector = new Reflector({
        resource: "nodes",
        client,
        signal,
        backoff: { initialMs: 50, maxMs: 200 },
        waker: new RetryWaker(),
        resolveTarget: () => Promise.resolve({ path: "/api/v1/nodes", kind: "Node" }),
        onChange: () => changes++,
        onSynced: () => {},
        onError: (error) => errors.push(error),
      });
      const run = reflector.run();
      await new Promise((r) => setTimeout(r, 800));
      assert.deepEqual([...reflector.store.keys()], ["n1"], "the store was not emptied");
      assert.equal(changes, 1, "only the first list changed the store");
      assert.ok(errors.length >= 1 && errors.every((e) => e instanceof InvalidResponseError));
      assert.match(String(errors[0]), /GET \/api\/v1\/nodes returned 200 without a list: /);
      assert.ok(reflector.error instanceof InvalidResponseError);
      // Backoff 50 → 200 ms: a handful of relists in 800 ms, not hundreds.
      assert.ok(lists() <= 10, `${lists()} lists in 800 ms`);
      return { run };
    });
  });
}
