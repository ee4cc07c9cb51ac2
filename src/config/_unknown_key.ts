/**
 * The message for an unknown key: a close known key ("did you mean"), or the section the key
 * belongs to when it is misplaced.
 *
 * @module
 */
import { z } from "zod";
import { suggest } from "../core/suggest.ts";
import { formatPath } from "./issue.ts";
import { key } from "./_messages.ts";
import type { Path } from "./_raw.ts";
import { configSchema } from "./schema.ts";

/** Keys of the schema's object at `path` (indices and map keys match any element). */
function keysAt(schema: z.ZodType, path: Path): readonly string[] | undefined {
  let s: z.ZodType = schema;
  for (;;) {
    if (
      s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodPrefault ||
      s instanceof z.ZodNullable
    ) s = s.unwrap() as z.ZodType;
    else if (s instanceof z.ZodPipe) s = s.in as z.ZodType;
    else break;
  }
  if (s instanceof z.ZodUnion) {
    for (const option of s.options) {
      const keys = keysAt(option as z.ZodType, path);
      if (keys !== undefined) return keys;
    }
    return undefined;
  }
  const [head, ...rest] = path;
  if (head === undefined) return s instanceof z.ZodObject ? Object.keys(s.shape) : undefined;
  if (s instanceof z.ZodObject) {
    const field = s.shape[String(head)];
    return field === undefined ? undefined : keysAt(field as z.ZodType, rest);
  }
  if (s instanceof z.ZodArray) return keysAt(s.element as z.ZodType, rest);
  if (s instanceof z.ZodRecord) return keysAt(s.valueType as z.ZodType, rest);
  return undefined;
}

/** Sections a misplaced key may belong to, for "it belongs under `settings`". */
const SECTIONS: readonly { readonly path: Path; readonly where: string }[] = [
  { path: ["settings"], where: `under ${key("settings")}` },
  { path: ["configurations", 0], where: `in a listener under ${key("configurations")}` },
  { path: ["configurations", 0, "healthCheck"], where: `under ${key("healthCheck")}` },
  { path: ["configurations", 0, "maglev"], where: `under ${key("maglev")}` },
];
/** Keys too generic to guess a section from. */
const AMBIGUOUS_KEYS: ReadonlySet<string> = new Set(["port", "timeout", "enabled", "address"]);

/**
 * The message for key `name` of the map at `objectPath`, which the schema does not know: with
 * a close known key of that map, or else the section that has `name`, when it is telling.
 */
export function unknownKeyMessage(objectPath: Path, name: string): string {
  const known = keysAt(configSchema, objectPath) ?? [];
  const close = suggest(name, plausible(name, known));
  if (close !== undefined) return `unknown key ${key(name)}: did you mean ${key(close)}?`;
  if (!AMBIGUOUS_KEYS.has(name)) {
    const here = formatPath(objectPath.map((s) => (typeof s === "number" ? 0 : s)));
    for (const section of SECTIONS) {
      if (formatPath(section.path) === here) continue;
      if (keysAt(configSchema, section.path)?.includes(name)) {
        return `unknown key ${key(name)}: it belongs ${section.where}`;
      }
    }
  }
  return `unknown key ${key(name)}`;
}

/** Lower case without `_`, `-` and spaces, as `suggest` compares words. */
function fold(word: string): string {
  return word.toLowerCase().replace(/[-_\s]/g, "");
}

/**
 * The candidates `suggest` could possibly pick for `word`: those it would accept as a prefix
 * match, and those whose letters differ from the word's by no more than the third of their
 * length that `suggest` allows. Edit distance costs the product of the lengths, so with
 * thousands of unknown keys checking every candidate dominated validation; the letter count
 * is a lower bound of it (an edit changes at most two counts by one each, a transposition
 * none) that costs the sum of the lengths.
 */
function plausible(word: string, candidates: readonly string[]): string[] {
  const folded = fold(word);
  return candidates.filter((candidate) => {
    const other = fold(candidate);
    if (folded.length >= 3 && other.startsWith(folded)) return true;
    const limit = Math.max(1, Math.floor(Math.max(folded.length, other.length) / 3));
    if (Math.abs(folded.length - other.length) > limit) return false;
    return letterDistance(folded, other) <= limit;
  });
}

/** Lower bound of the edit distance: the letters one word has more of than the other. */
function letterDistance(a: string, b: string): number {
  const counts = new Map<string, number>();
  for (const c of a) counts.set(c, (counts.get(c) ?? 0) + 1);
  for (const c of b) counts.set(c, (counts.get(c) ?? 0) - 1);
  let more = 0;
  let fewer = 0;
  for (const n of counts.values()) {
    if (n > 0) more += n;
    else fewer -= n;
  }
  return Math.max(more, fewer);
}
