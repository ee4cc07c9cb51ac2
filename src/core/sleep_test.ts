import assert from "node:assert/strict";
import { sleep } from "./sleep.ts";

Deno.test("sleep() waits its time, and ends at once when the signal aborts", async () => {
  const never = new AbortController();
  let started = performance.now();
  await sleep(30, never.signal);
  assert.ok(performance.now() - started >= 25);

  const stop = new AbortController();
  started = performance.now();
  const waiting = sleep(60_000, stop.signal);
  setTimeout(() => stop.abort(), 10);
  await waiting;
  assert.ok(performance.now() - started < 5_000);

  started = performance.now();
  await sleep(60_000, AbortSignal.abort());
  assert.ok(performance.now() - started < 1_000);
});
