import assert from "node:assert/strict";
import { deadline, isTimeout, settledWithin } from "./deadline.ts";

Deno.test("deadline() resolves with the value when the promise settles in time", async () => {
  assert.equal(await deadline(Promise.resolve(7), 1_000), 7);
});

Deno.test("deadline() passes the promise's own rejection on", async () => {
  const error = new Error("boom");
  await assert.rejects(deadline(Promise.reject(error), 1_000), (e) => e === error);
});

Deno.test("deadline() rejects with a TimeoutError once the time passes", async () => {
  const never = new Promise<never>(() => {});
  const started = performance.now();
  const error = await deadline(never, 20).then(() => undefined, (e: unknown) => e);
  assert.ok(isTimeout(error), String(error));
  assert.ok(performance.now() - started >= 15, "waited about the deadline");
  assert.match((error as Error).message, /^Timed out after 20ms$/);
});

Deno.test("deadline() rejects with the signal's reason on abort, at once when aborted", async () => {
  const never = new Promise<never>(() => {});
  const controller = new AbortController();
  const waiting = deadline(never, 60_000, controller.signal);
  const reason = new Error("stop");
  controller.abort(reason);
  await assert.rejects(waiting, (e) => e === reason);
  await assert.rejects(deadline(never, 60_000, controller.signal), (e) => e === reason);
  assert.equal(isTimeout(reason), false);
});

Deno.test("settledWithin() tells settled from timed out and aborted", async () => {
  assert.equal(await settledWithin(Promise.resolve(), 1_000), true);
  assert.equal(await settledWithin(Promise.reject(new Error("x")), 1_000), true);
  assert.equal(await settledWithin(new Promise(() => {}), 10), false);
  const controller = new AbortController();
  controller.abort();
  assert.equal(await settledWithin(new Promise(() => {}), 60_000, controller.signal), false);
});
