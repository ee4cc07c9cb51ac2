import assert from "node:assert/strict";
import { LogLimiter } from "./_log_limiter.ts";

Deno.test("LogLimiter lets one event through per interval and counts the rest", () => {
  const limiter = new LogLimiter(1000);
  assert.equal(limiter.take(0), 0);
  assert.equal(limiter.take(10), undefined);
  assert.equal(limiter.take(999), undefined);
  assert.equal(limiter.take(1000), 2);
  assert.equal(limiter.take(2500), 0);
});
