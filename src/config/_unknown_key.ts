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
  const known = knownKeys(objectPath);
  const close = suggest(name, plausible(name, known));
  if (close !== undefined) return `unknown key ${key(name)}: did you mean ${key(close)}?`;
  if (!AMBIGUOUS_KEYS.has(name)) {
    for (const section of SECTIONS) {
      const keys = knownKeys(section.path);
      if (keys !== known && keys.keys.has(name)) {
        return `unknown key ${key(name)}: it belongs ${section.where}`;
      }
    }
  }
  return `unknown key ${key(name)}`;
}

/** The schema's keys of one map, folded once: a config with many unknown keys asks often. */
export interface KnownKeys {
  readonly names: readonly string[];
  readonly folded: readonly string[];
  /** {@linkcode letterMask} of each folded name. */
  readonly masks: readonly number[];
  readonly keys: ReadonlySet<string>;
}

const knownKeysBySection = new Map<string, KnownKeys>();

/** A map's place with list indexes as 0: every listener has the same keys. */
function sectionOf(objectPath: Path): string {
  return formatPath(objectPath.map((s) => (typeof s === "number" ? 0 : s)));
}

/** Keys by path array: all unknown keys of one map come with the same array. */
const knownKeysByPath = new WeakMap<Path, KnownKeys>();

export function knownKeys(objectPath: Path): KnownKeys {
  const asked = knownKeysByPath.get(objectPath);
  if (asked !== undefined) return asked;
  const section = sectionOf(objectPath);
  let known = knownKeysBySection.get(section);
  if (known === undefined) {
    const names = keysAt(configSchema, objectPath) ?? [];
    const folded = names.map(fold);
    known = { names, folded, masks: folded.map(letterMask), keys: new Set(names) };
    knownKeysBySection.set(section, known);
  }
  knownKeysByPath.set(objectPath, known);
  return known;
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
 * none) that costs the sum of the lengths, and the letters one word has and the other lacks
 * altogether (a bit mask each) a cheaper, weaker one that rules out most candidates first.
 */
export function plausible(word: string, known: KnownKeys): string[] {
  const folded = fold(word);
  const mask = letterMask(folded);
  const found: string[] = [];
  for (let i = 0; i < known.names.length; i++) {
    const other = known.folded[i]!;
    if (folded.length >= 3 && other.startsWith(folded)) {
      found.push(known.names[i]!);
      continue;
    }
    const limit = Math.max(1, Math.floor(Math.max(folded.length, other.length) / 3));
    if (Math.abs(folded.length - other.length) > limit) continue;
    const otherMask = known.masks[i]!;
    if (Math.max(bitCount(mask & ~otherMask), bitCount(otherMask & ~mask)) > limit) continue;
    if (letterDistance(folded, other) <= limit) found.push(known.names[i]!);
  }
  return found;
}

/** Letter counts by UTF-16 code unit; every count is back to 0 between calls. */
const counts = new Int32Array(65_536);

/** Lower bound of the edit distance: the letters one word has more of than the other. */
function letterDistance(a: string, b: string): number {
  for (let i = 0; i < a.length; i++) counts[a.charCodeAt(i)]!++;
  for (let i = 0; i < b.length; i++) counts[b.charCodeAt(i)]!--;
  let more = 0;
  let fewer = 0;
  const settle = (word: string) => {
    for (let i = 0; i < word.length; i++) {
      const c = word.charCodeAt(i);
      const n = counts[c]!;
      if (n > 0) more += n;
      else fewer -= n;
      counts[c] = 0;
    }
  };
  settle(a);
  settle(b);
  return Math.max(more, fewer);
}

/**
 * One bit per letter `a`-`z`, six bits shared by the digits, one bit per other code unit
 * modulo 32. A bit set in one word's mask and not the other's stands for at least one
 * character the other word lacks, so the bits make a lower bound of
 * {@linkcode letterDistance} even where two characters share a bit.
 */
function letterMask(word: string): number {
  let mask = 0;
  for (let i = 0; i < word.length; i++) {
    const c = word.charCodeAt(i);
    const bit = c >= 0x61 && c <= 0x7a
      ? c - 0x61
      : c >= 0x30 && c <= 0x39
      ? 26 + (c - 0x30) % 6
      : c & 31;
    mask |= 1 << bit;
  }
  return mask;
}

function bitCount(n: number): number {
  let v = n - ((n >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}
