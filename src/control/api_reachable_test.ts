import assert from "node:assert/strict";
import { apiUnreachable } from "./api_reachable.ts";

Deno.test("apiUnreachable: a listening server is reachable, a closed port is refused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  const signal = new AbortController().signal;
  try {
    assert.equal(await apiUnreachable(`https://127.0.0.1:${port}`, signal), undefined);
  } finally {
    listener.close();
  }
  assert.equal(await apiUnreachable(`https://127.0.0.1:${port}`, signal), "connection refused");
  assert.equal(await apiUnreachable("not a url", signal), undefined, "left to the client");
});

Deno.test("apiUnreachable: a name that does not resolve says so", async () => {
  const why = await apiUnreachable("https://nautiluslb-test.invalid", new AbortController().signal);
  assert.equal(why, 'the name "nautiluslb-test.invalid" does not resolve');
});

Deno.test("apiUnreachable: an aborted signal rejects with its reason", async () => {
  const controller = new AbortController();
  const reason = new Error("stop");
  controller.abort(reason);
  await assert.rejects(apiUnreachable("https://127.0.0.1:1", controller.signal), reason);
});
