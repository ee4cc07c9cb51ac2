/**
 * YAML text to plain data and a map of where each value stands in the text, in passes whose
 * cost grows linearly with the text.
 *
 * `js-yaml` parses the text into a flat stream of events that carry source offsets (a map or
 * list opens, a scalar, an alias, a collection closes), and builds data from those events:
 * maps become objects, an alias the same object as its anchor's value (shared, never copied).
 * A walk over the events builds the {@linkcode SourceNode} tree and finds repeated keys,
 * unknown aliases, alias cycles and alias bombs. A document of one part without aliases (most
 * configs) is built straight away, the parser refusing repeated keys, and walked only when an
 * issue needs a position; any other is walked first and built only when the walk found nothing
 * that leaves its shape unknown (of a repeated key, the last value counts).
 *
 * Scalars resolve by the YAML 1.2 core schema (`yes` is a string, `0x1F` a number, `1_000` a
 * string; a float too large for a number, `1e310`, stays a string).
 *
 * @module
 */
import {
  constructFromEvents,
  CORE_SCHEMA,
  EVENT_ID,
  getScalarValue,
  parseEvents,
  SCALAR_STYLE,
  type ScalarEvent,
  YAMLException,
} from "js-yaml";

/**
 * Most values that aliases may add to a document by expansion, by default. Real documents use
 * a handful; "billion laughs" documents multiply a few bytes into billions of values.
 */
export const DEFAULT_MAX_ALIAS_EXPANSION = 100_000;

/**
 * Most maps and lists nested in one another, by default, the top-level one being level 1. A
 * config needs fewer than ten.
 */
export const DEFAULT_MAX_NESTING_DEPTH = 100;

/** Options of {@linkcode parseYaml}. */
export interface ParseYamlOptions {
  /**
   * Most maps and lists nested in one another, the top-level one being level 1. Up to 2,000.
   * @default {DEFAULT_MAX_NESTING_DEPTH}
   */
  readonly maxDepth?: number;
  /**
   * Most values aliases may add by expansion.
   * @default {DEFAULT_MAX_ALIAS_EXPANSION}
   */
  readonly maxAliasExpansion?: number;
}

/** Where one value stands in the source. */
export interface SourceNode {
  /** Offset of the value's first character (a collection's `{`, `[` or first entry). */
  readonly start: number;
  /** A map's entries by key; of a repeated key, the last (the one the data keeps). */
  readonly entries?: ReadonlyMap<string, SourceEntry>;
  /** A list's items, by index. */
  readonly items?: readonly SourceNode[];
  /** An alias's anchored value. */
  readonly target?: SourceNode;
}

/** One `key: value` of a map. */
export interface SourceEntry {
  /** Offset of the key's first character. */
  readonly keyStart: number;
  readonly value: SourceNode;
}

/** A problem with the YAML itself, at a source offset. */
export interface YamlProblem {
  readonly offset: number;
  readonly message: string;
  /** Whether the data still has a definite shape (only repeated keys leave one). */
  readonly isShapeKnown: boolean;
}

/** Outcome of {@linkcode parseYaml}. */
export interface ParsedYaml {
  /** The document as plain data; `undefined` for an empty document or broken YAML. */
  readonly data: unknown;
  /**
   * Positions of the document's values; `undefined` when there is no document. Built on the
   * first call (a valid document may never need them), the same tree on every call.
   */
  root(): SourceNode | undefined;
  /** In document order. */
  readonly problems: readonly YamlProblem[];
}

/** A map or list whose closing event has not come yet. */
interface Open {
  readonly node: {
    readonly start: number;
    readonly entries?: Map<string, SourceEntry>;
    readonly items?: SourceNode[];
  };
  /** Values it stands for once aliases are expanded, so far. */
  size: number;
  /** Its anchor, if any. */
  readonly anchor: Anchor | undefined;
  /** Of a map: the key whose value comes next. */
  key: { readonly name: string | undefined; readonly start: number } | undefined;
}

/** An anchored value, as an alias finds it. */
interface Anchor {
  readonly node: SourceNode;
  size: number;
  /** Whether the anchored map or list is still open (an alias to it would be a cycle). */
  isOpen: boolean;
}

/** Thrown from the walk over the events to stop a document that is not worth reading on. */
class Stop extends Error {
  constructor(readonly problem: YamlProblem) {
    super(problem.message);
  }
}

/**
 * Parses one YAML document. Never throws for bad input: broken YAML, a second document,
 * unknown aliases, aliases that refer to the value containing them or expand beyond
 * `maxAliasExpansion` values, nesting beyond `maxDepth` and repeated keys come back as
 * problems, with messages that start `invalid YAML: `.
 */
export function parseYaml(text: string, options: ParseYamlOptions = {}): ParsedYaml {
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_NESTING_DEPTH;
  const maxAliasExpansion = options.maxAliasExpansion ?? DEFAULT_MAX_ALIAS_EXPANSION;
  let events: ReturnType<typeof parseEvents>;
  try {
    // The parser recurses per level (its stack runs out near 10,000) and counts levels its
    // own way: its limit only guards the stack, the walk below holds the exact one.
    events = parseEvents(text, { maxDepth: PARSER_DEPTH_FACTOR * maxDepth + 10 });
  } catch (error) {
    return { data: undefined, root: () => undefined, problems: [problemOf(error, text, maxDepth)] };
  }
  // Most documents have one part and no alias: then the parser alone can build the data,
  // refusing repeated keys, and positions wait until an issue needs one.
  if (isPlain(events, maxDepth)) {
    try {
      const [data] = constructFromEvents(events, { source: text, schema: CORE_SCHEMA });
      let root: { node: SourceNode | undefined } | undefined;
      const build = () => walk(text, events, [], maxAliasExpansion, maxDepth);
      return { data, root: () => (root ??= { node: build() }).node, problems: [] };
    } catch {
      // A repeated key, an unknown tag: the walk below says where.
    }
  }
  const problems: YamlProblem[] = [];
  let node: SourceNode | undefined;
  try {
    node = walk(text, events, problems, maxAliasExpansion, maxDepth);
  } catch (error) {
    if (!(error instanceof Stop)) throw error;
    problems.push(error.problem);
  }
  const root = () => node;
  problems.sort((a, b) => a.offset - b.offset);
  if (!problems.every((p) => p.isShapeKnown)) return { data: undefined, root, problems };
  try {
    const [data] = constructFromEvents(events, { source: text, schema: CORE_SCHEMA, json: true });
    return { data, root, problems };
  } catch (error) {
    // An unknown tag (`!foo`, `!!binary`), a map or list as a key.
    problems.push(problemOf(error, text, maxDepth));
    problems.sort((a, b) => a.offset - b.offset);
    return { data: undefined, root, problems };
  }
}

/**
 * Whether the events hold one document, no alias and no nesting past `maxDepth`: then the
 * walk has nothing to find but positions.
 */
function isPlain(events: ReturnType<typeof parseEvents>, maxDepth: number): boolean {
  let documents = 0;
  let depth = 0; // open documents and collections
  for (const event of events) {
    switch (event.type) {
      case EVENT_ID.ALIAS:
        return false;
      case EVENT_ID.DOCUMENT:
        if (++documents > 1) return false;
        depth++;
        break;
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE:
        // One for the document: the top-level collection is level 1.
        if (++depth - 1 > maxDepth) return false;
        break;
      case EVENT_ID.POP:
        depth--;
        break;
    }
  }
  return true;
}

/**
 * The parser's own depth limit, as a multiple of the one asked for: above any count of the
 * parser's for a document within the limit, below where its stack runs out (~10,000).
 */
const PARSER_DEPTH_FACTOR = 4;

/** Builds the source tree from the events, pushing problems; throws {@link Stop}. */
function walk(
  text: string,
  events: ReturnType<typeof parseEvents>,
  problems: YamlProblem[],
  maxAliasExpansion: number,
  maxDepth: number,
): SourceNode | undefined {
  const stack: Open[] = [];
  const anchors = new Map<string, Anchor>();
  let root: SourceNode | undefined;
  let documents = 0;
  let expansion = 0;

  /**
   * Puts `node` in the open collection: as the next item, key or value. An empty scalar
   * (start -1) stands at its collection, or as a map value at its key.
   */
  const place = (node: SourceNode, scalar: ScalarEvent | undefined, size: number) => {
    const parent = stack.at(-1);
    if (parent === undefined) {
      if (node.start >= 0) root ??= node;
      return;
    }
    if (node.start < 0 && (parent.node.items !== undefined || parent.key === undefined)) {
      node = { start: parent.node.start };
    }
    parent.size += size;
    const { entries, items } = parent.node;
    if (items !== undefined) {
      items.push(node);
    } else if (parent.key === undefined) {
      parent.key = { name: scalar && keyName(text, scalar), start: node.start };
    } else {
      const key = parent.key;
      parent.key = undefined;
      if (key.name === undefined) return; // a map or list as a key: nothing to find it by
      if (entries!.has(key.name)) {
        problems.push({
          offset: key.start,
          message: `duplicate key \`${key.name}\``,
          isShapeKnown: true,
        });
        entries!.delete(key.name); // re-insert, so entries stay in the order the data has them
      }
      // An empty value is placed at its key.
      entries!.set(key.name, {
        keyStart: key.start,
        value: node.start < 0 ? { start: key.start } : node,
      });
    }
  };

  const anchorOf = (
    start: number,
    end: number,
    node: SourceNode,
    size: number,
    isOpen: boolean,
  ) => {
    if (start < 0) return undefined;
    const anchor: Anchor = { node, size, isOpen };
    anchors.set(text.slice(start, end), anchor);
    return anchor;
  };

  for (const event of events) {
    switch (event.type) {
      case EVENT_ID.DOCUMENT:
        if (++documents === 2) {
          throw new Stop({
            offset: secondDocument(text),
            message: "invalid YAML: expected one document, found more: remove the extra `---`",
            isShapeKnown: false,
          });
        }
        stack.length = 0;
        break;
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE: {
        if (stack.length >= maxDepth) {
          throw new Stop({
            offset: event.start,
            message: `invalid YAML: nesting is deeper than ${maxDepth} levels`,
            isShapeKnown: false,
          });
        }
        const node = event.type === EVENT_ID.MAPPING
          ? { start: event.start, entries: new Map<string, SourceEntry>() }
          : { start: event.start, items: [] as SourceNode[] };
        place(node, undefined, 0);
        const anchor = anchorOf(event.anchorStart, event.anchorEnd, node, 1, true);
        stack.push({ node, size: 1, anchor, key: undefined });
        break;
      }
      case EVENT_ID.SCALAR: {
        const node = { start: scalarStart(text, event) };
        place(node, event, 1);
        anchorOf(event.anchorStart, event.anchorEnd, node, 1, false);
        break;
      }
      case EVENT_ID.ALIAS: {
        const name = text.slice(event.anchorStart, event.anchorEnd);
        const offset = event.anchorStart - 1; // the `*`
        const anchor = anchors.get(name);
        if (anchor === undefined) {
          throw new Stop({
            offset,
            message:
              `invalid YAML: unknown alias \`*${name}\`: its anchor \`&${name}\` must come first`,
            isShapeKnown: false,
          });
        }
        if (anchor.isOpen) {
          problems.push({
            offset,
            message:
              `invalid YAML: alias \`*${name}\` refers to a value that contains it: a config cannot be recursive`,
            isShapeKnown: false,
          });
        }
        expansion += anchor.size;
        if (expansion > maxAliasExpansion) {
          throw new Stop({
            offset,
            message:
              `invalid YAML: aliases expand to more than ${maxAliasExpansion} values: reduce the use of \`*${name}\``,
            isShapeKnown: false,
          });
        }
        place({ start: offset, target: anchor.node }, undefined, anchor.size);
        break;
      }
      case EVENT_ID.POP: {
        const closed = stack.pop();
        if (closed === undefined) break; // the end of a document
        if (closed.anchor !== undefined) {
          closed.anchor.size = closed.size;
          closed.anchor.isOpen = false;
        }
        const parent = stack.at(-1);
        if (parent !== undefined) parent.size += closed.size;
        break;
      }
    }
  }
  return root;
}

/**
 * Where a scalar starts as written: its opening quote, or its block indicator (`|`, `>`);
 * the parser's offset is that of the value inside. -1 for an empty scalar.
 */
function scalarStart(text: string, event: ScalarEvent): number {
  const start = event.valueStart;
  if (start < 0) return start;
  switch (event.style) {
    case SCALAR_STYLE.SINGLE_QUOTED:
    case SCALAR_STYLE.DOUBLE_QUOTED:
      return start - 1;
    case SCALAR_STYLE.LITERAL_BLOCK:
    case SCALAR_STYLE.FOLDED_BLOCK: {
      // The indicator ends the last line before the content that is not blank (a comment may follow it).
      let end = start;
      for (;;) {
        const lineEnd = text.lastIndexOf("\n", end - 1);
        if (lineEnd < 0) return start;
        const lineStart = text.lastIndexOf("\n", lineEnd - 1) + 1;
        const line = text.slice(lineStart, lineEnd);
        const header = /[|>][-+0-9]*[ \t]*(?:#.*)?\r?$/.exec(line);
        if (header !== null) return lineStart + header.index;
        if (line.trim() !== "") return start;
        end = lineStart;
      }
    }
    default:
      return start;
  }
}

/** A scalar key as the data has it: the schema resolves plain scalars, then keys are strings. */
function keyName(text: string, event: ScalarEvent): string {
  if (event.valueStart < 0) return "null";
  const value = getScalarValue(text, event);
  if (event.style !== SCALAR_STYLE.PLAIN) return value;
  if (NULL.test(value)) return "null";
  if (TRUE.test(value)) return "true";
  if (FALSE.test(value)) return "false";
  if (INT.test(value)) return String(Number(value));
  if (INT_OCTAL.test(value)) return String(parseInt(value.slice(2), 8));
  if (INT_HEX.test(value)) return String(parseInt(value.slice(2), 16));
  if (FLOAT.test(value)) return String(Number(value));
  if (INFINITY.test(value)) return value.startsWith("-") ? "-Infinity" : "Infinity";
  if (NOT_A_NUMBER.test(value)) return "NaN";
  return value;
}

// The YAML 1.2.2 core schema's plain scalars that are not strings (section 10.3.2).
const NULL = /^(?:~|null|Null|NULL)$/;
const TRUE = /^(?:true|True|TRUE)$/;
const FALSE = /^(?:false|False|FALSE)$/;
const INT = /^[-+]?[0-9]+$/;
const INT_OCTAL = /^0o[0-7]+$/;
const INT_HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const INFINITY = /^[-+]?\.(?:inf|Inf|INF)$/;
const NOT_A_NUMBER = /^\.(?:nan|NaN|NAN)$/;

/**
 * Where the second document starts: the first `---` line with content before it (other than
 * white space, comments and directives). The parser gives a document no offset.
 */
function secondDocument(text: string): number {
  const from = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (const match of text.matchAll(/^---(?=[ \t\r\n]|$)/gm)) {
    const before = text.slice(from, match.index).replace(/#[^\n]*|^%[^\n]*/gm, "");
    if (before.trim() !== "") return match.index;
  }
  return 0;
}

function problemOf(error: unknown, text: string, maxDepth: number): YamlProblem {
  if (error instanceof YAMLException) {
    const offset = Math.min(error.mark?.position ?? 0, text.length);
    if (error.reason.startsWith("nesting exceeded maxDepth")) {
      return {
        offset,
        message: `invalid YAML: nesting is deeper than ${maxDepth} levels`,
        isShapeKnown: false,
      };
    }
    return { offset, message: `invalid YAML: ${error.reason}`, isShapeKnown: false };
  }
  // Only pathological input gets here.
  const message = error instanceof Error ? error.message : String(error);
  return { offset: 0, message: `invalid YAML: ${message}`, isShapeKnown: false };
}
