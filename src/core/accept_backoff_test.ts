import assert from "node:assert/strict";
import { ACCEPT_BACKOFF_MAX_MS, ACCEPT_BACKOFF_MIN_MS, AcceptBackoff } from "./accept_backoff.ts";

Deno.test("AcceptBackoff doubles from 5 ms to 1 s and starts over after a success", () => {
  const backoff = new AcceptBackoff();
  const delays = Array.from({ length: 10 }, () => backoff.next());
  assert.deepEqual(delays, [5, 10, 20, 40, 80, 160, 320, 640, 1_000, 1_000]);
  assert.equal(delays[0], ACCEPT_BACKOFF_MIN_MS);
  assert.equal(delays.at(-1), ACCEPT_BACKOFF_MAX_MS);
  backoff.reset();
  assert.equal(backoff.next(), 5);
});
