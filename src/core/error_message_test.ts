import assert from "node:assert/strict";
import { errorMessage } from "./error_message.ts";

Deno.test("errorMessage() takes an Error's message and stringifies anything else", () => {
  const cases: [unknown, string][] = [
    [new Error("connection refused"), "connection refused"],
    [new Deno.errors.ConnectionRefused("refused"), "refused"],
    [new TypeError(""), ""],
    ["plain text", "plain text"],
    [42, "42"],
    [undefined, "undefined"],
    [null, "null"],
    [{ toString: () => "custom" }, "custom"],
    [Object.create(null), "unprintable error"],
  ];
  for (const [input, expected] of cases) {
    assert.equal(errorMessage(input), expected, String(expected));
  }
});
