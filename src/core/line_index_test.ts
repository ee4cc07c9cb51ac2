import assert from "node:assert/strict";
import { LineIndex } from "./line_index.ts";

Deno.test("LineIndex: offsets to 1-based line and column through LF, CRLF and lone CR", () => {
  const text = "ab\ncd\r\nef\rgh";
  const index = new LineIndex(text);
  const at = (c: string) => index.position(text.indexOf(c));
  assert.deepEqual(at("a"), { line: 1, column: 1 });
  assert.deepEqual(at("b"), { line: 1, column: 2 });
  assert.deepEqual(at("c"), { line: 2, column: 1 });
  assert.deepEqual(at("e"), { line: 3, column: 1 });
  assert.deepEqual(at("h"), { line: 4, column: 2 });
  assert.deepEqual(new LineIndex("").position(0), { line: 1, column: 1 });
});
