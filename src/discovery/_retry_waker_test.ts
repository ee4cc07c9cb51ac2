import assert from "node:assert/strict";
import { RetryWaker } from "./_retry_waker.ts";

/** Lets pending timers of 0 ms and promise callbacks run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

Deno.test("RetryWaker.wake() ends wakeable waits only; the signal ends the others", async () => {
  const waker = new RetryWaker();
  const controller = new AbortController();
  const ended: string[] = [];
  const wakeable = waker.sleep(60_000, controller.signal, true).then(() => ended.push("wakeable"));
  const kept = waker.sleep(60_000, controller.signal).then(() => ended.push("kept"));

  waker.wake();
  await wakeable;
  await settle();
  assert.deepEqual(ended, ["wakeable"]);

  // A wait that was woken is gone: waking again touches nothing.
  waker.wake();
  await settle();
  assert.deepEqual(ended, ["wakeable"]);

  controller.abort();
  await kept;
  assert.deepEqual(ended, ["wakeable", "kept"]);
});

Deno.test("RetryWaker.sleep() returns at once when the signal is already aborted", async () => {
  const waker = new RetryWaker();
  await waker.sleep(60_000, AbortSignal.abort(), true);
  // Nothing was left registered: a wake after it has no wait to end.
  waker.wake();
});

Deno.test("RetryWaker.sleep() ends after its time without a wake", async () => {
  const waker = new RetryWaker();
  const controller = new AbortController();
  await waker.sleep(1, controller.signal, true);
  controller.abort();
});
