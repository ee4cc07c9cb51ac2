import assert from "node:assert/strict";
import { errorMessage, fileErrorMessage } from "./error_message.ts";

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

Deno.test("fileErrorMessage() drops the operation and path Deno appends", async () => {
  const error = await Deno.stat("no/such/file").then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof Deno.errors.NotFound);
  assert.match(errorMessage(error), /no\/such\/file/);
  assert.equal(fileErrorMessage(error), errorMessage(error).replace(/: stat '[^']*'$/, ""));
  assert.doesNotMatch(fileErrorMessage(error), /no\/such\/file/);
  assert.equal(fileErrorMessage(new Error("plain")), "plain");
});
