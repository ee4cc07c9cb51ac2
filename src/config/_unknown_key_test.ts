import assert from "node:assert/strict";
import fc from "fast-check";
import { suggest } from "../core/suggest.ts";
import { knownKeys, plausible, unknownKeyMessage } from "./_unknown_key.ts";

const SECTIONS = [
  [],
  ["settings"],
  ["configurations", 0],
  ["configurations", 3, "healthCheck"],
] as const;

/** A known key with up to three random edits, or any short word. */
function word(names: readonly string[]): fc.Arbitrary<string> {
  const edit = fc.record({
    at: fc.nat(),
    kind: fc.constantFrom("insert", "delete", "replace", "swap", "case", "underscore"),
    char: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789_-"),
  });
  const edited = fc.tuple(fc.constantFrom(...names), fc.array(edit, { maxLength: 3 })).map(
    ([name, edits]) => {
      let w = name;
      for (const { at, kind, char } of edits) {
        const i = w.length === 0 ? 0 : at % w.length;
        if (kind === "insert") w = w.slice(0, i) + char + w.slice(i);
        else if (kind === "delete") w = w.slice(0, i) + w.slice(i + 1);
        else if (kind === "replace") w = w.slice(0, i) + char + w.slice(i + 1);
        else if (kind === "swap" && i + 1 < w.length) {
          w = w.slice(0, i) + w[i + 1] + w[i] + w.slice(i + 2);
        } else if (kind === "case") w = w.slice(0, i) + w.slice(i).toUpperCase();
        else if (kind === "underscore") w = w.slice(0, i) + "_" + w.slice(i).toLowerCase();
      }
      return w;
    },
  );
  return fc.oneof(edited, fc.string({ minLength: 1, maxLength: 20 }));
}

Deno.test("plausible() never drops the key suggest() would pick from all keys (property)", () => {
  for (const path of SECTIONS) {
    const known = knownKeys(path);
    assert.ok(known.names.length >= 2, `keys at ${path.join(".")}`);
    fc.assert(
      fc.property(word(known.names), (w) => {
        assert.equal(suggest(w, plausible(w, known)), suggest(w, known.names), w);
      }),
      { numRuns: 3_000 },
    );
  }
});

Deno.test("unknownKeyMessage() suggests a close key, or the section a key belongs to", () => {
  assert.equal(
    unknownKeyMessage(["configurations", 0], "listenerAdress"),
    "unknown key `listenerAdress`: did you mean `listenerAddress`?",
  );
  assert.equal(
    unknownKeyMessage(["configurations", 2], "kubeconfigPath"),
    "unknown key `kubeconfigPath`: it belongs under `settings`",
  );
  assert.equal(
    unknownKeyMessage(["configurations", 0], "unknownKey12345"),
    "unknown key `unknownKey12345`",
  );
});
