/**
 * YAML text to plain data and a map of where each value stands in the text, in one pass
 * whose cost grows linearly with the text.
 *
 * `js-yaml` builds the data: an alias becomes the same object as its anchor's value (shared,
 * never copied), and a repeated key keeps the last value. Its parse events (a node opens, a
 * node closes) give the positions, from which this module builds a {@linkcode SourceNode}
 * tree, finds repeated keys, alias cycles and alias bombs, and bounds nesting.
 *
 * Scalars resolve by the YAML 1.2 core schema exactly (`yes` is a string, `0x1F` a number,
 * `1_000` a string), not by `js-yaml`'s more lenient integers and floats.
 *
 * The positions only ever place a message: the data comes from the parser alone, so a
 * position this module gets wrong can misplace an issue but never change what is validated.
 *
 * @module
 */
// @ts-types="@types/js-yaml"
import jsYaml from "js-yaml";

/**
 * Most values that aliases may add to the document by expansion. Real configs use a handful;
 * "billion laughs" documents multiply a few bytes into billions of values.
 */
export const MAX_ALIAS_EXPANSION = 100_000;

/** Deepest nesting of maps and lists accepted. A config needs fewer than ten levels. */
export const MAX_NESTING_DEPTH = 100;

/** Where one value stands in the source. */
export interface SourceNode {
  /** Offset of the value's first character (its anchor or tag, when it has one). */
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
  /** Positions of the document's values; `undefined` when there is no document. */
  readonly root: SourceNode | undefined;
  /** In document order. */
  readonly problems: readonly YamlProblem[];
}

// YAML 1.2.2 core schema, section 10.3.2: what `yaml` and the specification resolve, where
// `js-yaml` also takes `1_000`, `0b101`, `-0x1` and `+.5`-less forms.
const INT_DECIMAL = /^[-+]?[0-9]+$/;
const INT_OCTAL = /^0o[0-7]+$/;
const INT_HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const INFINITY = /^[-+]?\.(?:inf|Inf|INF)$/;
const NOT_A_NUMBER = /^\.(?:nan|NaN|NAN)$/;

const NULL = /^(?:~|null|Null|NULL|)$/;
const BOOLEAN = /^(?:true|True|TRUE|false|False|FALSE)$/;

const coreNull = new jsYaml.Type("tag:yaml.org,2002:null", {
  kind: "scalar",
  resolve: (text: string) => NULL.test(text),
  construct: () => null,
  predicate: (value: unknown) => value === null,
});

const coreBoolean = new jsYaml.Type("tag:yaml.org,2002:bool", {
  kind: "scalar",
  resolve: (text: string) => BOOLEAN.test(text),
  construct: (text: string) => text.charCodeAt(0) === 0x74 || text.charCodeAt(0) === 0x54,
  predicate: (value: unknown) => typeof value === "boolean",
});

const coreInt = new jsYaml.Type("tag:yaml.org,2002:int", {
  kind: "scalar",
  resolve: (text: string) => INT_DECIMAL.test(text) || INT_OCTAL.test(text) || INT_HEX.test(text),
  construct: (text: string) =>
    text.startsWith("0o")
      ? parseInt(text.slice(2), 8)
      : text.startsWith("0x")
      ? parseInt(text.slice(2), 16)
      : parseInt(text, 10),
  predicate: (value: unknown) => Number.isInteger(value),
});

const coreFloat = new jsYaml.Type("tag:yaml.org,2002:float", {
  kind: "scalar",
  resolve: (text: string) =>
    (FLOAT.test(text) && !INT_DECIMAL.test(text)) || INFINITY.test(text) ||
    NOT_A_NUMBER.test(text),
  construct: (text: string) =>
    INFINITY.test(text)
      ? (text.startsWith("-") ? -Infinity : Infinity)
      : NOT_A_NUMBER.test(text)
      ? NaN
      : parseFloat(text),
  predicate: (value: unknown) => typeof value === "number",
});

/** The YAML 1.2 core schema: strings, maps, lists, null, booleans, and the numbers above. */
const CORE_SCHEMA = jsYaml.FAILSAFE_SCHEMA.extend({
  implicit: [coreNull, coreBoolean, coreInt, coreFloat],
});

/** Thrown from the parse events to stop a document that is not worth reading on. */
class Stop extends Error {
  constructor(readonly problem: YamlProblem) {
    super(problem.message);
  }
}

/** A node being parsed. */
interface Frame {
  /** Parser position when the node opened: at or before its first character. */
  readonly open: number;
  readonly children: Closed[];
}

/** A node parsed. */
interface Closed {
  readonly start: number;
  /** Parser position when the node closed: after it, perhaps after trailing space. */
  readonly end: number;
  readonly result: unknown;
  readonly node: SourceNode;
  /** Values the node stands for once aliases are expanded. */
  readonly size: number;
  /** Whether the node has no text (`key:` and nothing). */
  readonly isEmpty?: boolean;
}

const CHAR_TAB = 0x09;
const CHAR_LF = 0x0a;
const CHAR_CR = 0x0d;
const CHAR_SPACE = 0x20;
const CHAR_HASH = 0x23;
const CHAR_STAR = 0x2a;
const CHAR_COLON = 0x3a;

/** First offset from `from` that is not white space, a line break or a comment. */
function skipSpace(text: string, from: number): number {
  let i = from;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === CHAR_SPACE || c === CHAR_TAB || c === CHAR_LF || c === CHAR_CR) i++;
    else if (c === CHAR_HASH) {
      while (i < text.length && text.charCodeAt(i) !== CHAR_LF) i++;
    } else return i;
  }
}

/** The alias name at `offset` (just after the `*`). */
function aliasName(text: string, offset: number): string {
  const match = /[^\s,[\]{}]*/y;
  match.lastIndex = offset;
  return match.exec(text)?.[0] ?? "";
}

/**
 * Parses one YAML document. Never throws for bad input: broken YAML, aliases that refer to
 * the value containing them or expand beyond {@linkcode MAX_ALIAS_EXPANSION} values, nesting
 * beyond {@linkcode MAX_NESTING_DEPTH} and repeated keys come back as problems.
 */
export function parseYaml(text: string): ParsedYaml {
  const problems: YamlProblem[] = [];
  const stack: Frame[] = [];
  /** Each finished map or list, by the object the parser built for it (aliases share it). */
  const finished = new Map<object, Closed>();
  let root: Closed | undefined;
  let expansion = 0;
  // The parser drops a byte order mark: its positions are one short of the text's then.
  const shift = text.charCodeAt(0) === 0xfeff ? 1 : 0;

  const close = (frame: Frame, state: jsYaml.State): Closed => {
    const end = state.position + shift;
    const result = state.result;
    const start = skipSpace(text, frame.open);
    // An empty value (`key:` and nothing) has no text of its own: the parser has already
    // moved on to the next line.
    if (start >= end) {
      return {
        start: frame.open,
        end,
        result,
        node: { start: frame.open },
        size: 1,
        isEmpty: true,
      };
    }
    const isCollection = state.kind === "mapping" || state.kind === "sequence";
    if (state.kind === null && text.charCodeAt(start) === CHAR_STAR) {
      return closeAlias(start, end, result);
    }
    if (!isCollection || typeof result !== "object" || result === null) {
      // A scalar; children are the parser trying it as a map key first.
      return { start, end, result, node: { start }, size: 1 };
    }
    const only = frame.children.length === 1 ? frame.children[0]! : undefined;
    if (only !== undefined && only.result === result) {
      // The parser read the collection as the key of a map that turned out not to be one.
      return { start, end, result, node: only.node, size: only.size };
    }
    let size = 1;
    for (const child of frame.children) size += child.size;
    const node = state.kind === "mapping"
      ? { start, entries: entriesOf(frame.children) }
      : { start, items: itemsOf(frame.children, result as unknown[], start) };
    const closed = { start, end, result, node, size };
    finished.set(result, closed);
    return closed;
  };

  const closeAlias = (start: number, end: number, result: unknown): Closed => {
    const name = aliasName(text, start + 1);
    let size = 1;
    let target: SourceNode | undefined;
    if (typeof result === "object" && result !== null) {
      const anchored = finished.get(result);
      if (anchored === undefined) {
        // The anchored map or list is still open: it contains this alias.
        problems.push({
          offset: start,
          message:
            `invalid YAML: alias \`*${name}\` refers to a value that contains it: a config cannot be recursive`,
          isShapeKnown: false,
        });
      } else {
        target = anchored.node;
        size = anchored.size;
      }
    }
    expansion += size;
    if (expansion > MAX_ALIAS_EXPANSION) {
      throw new Stop({
        offset: start,
        message:
          `invalid YAML: aliases expand to more than ${MAX_ALIAS_EXPANSION} values: reduce the use of \`*${name}\``,
        isShapeKnown: false,
      });
    }
    const node = target === undefined ? { start } : { start, target };
    return { start, end, result, node, size };
  };

  const isKey = (child: Closed): boolean =>
    text.charCodeAt(skipSpace(text, child.end)) === CHAR_COLON;

  const entriesOf = (children: readonly Closed[]): Map<string, SourceEntry> => {
    const entries = new Map<string, SourceEntry>();
    let key: Closed | undefined;
    const store = (k: Closed, value: SourceNode) => {
      const name = keyString(k.result);
      if (entries.has(name)) {
        problems.push({
          offset: k.start,
          message: `duplicate key \`${name}\``,
          isShapeKnown: true,
        });
        entries.delete(name); // re-insert, so entries stay in the order the data has them
      }
      entries.set(name, { keyStart: k.start, value });
    };
    for (const child of children) {
      if (isKey(child)) {
        if (key !== undefined) store(key, { start: key.start });
        key = child;
      } else if (key !== undefined) {
        // An empty value is placed at its key.
        store(key, child.isEmpty ? { start: key.start } : child.node);
        key = undefined;
      }
    }
    if (key !== undefined) store(key, { start: key.start });
    return entries;
  };

  /**
   * Start of the first open node deeper than {@linkcode MAX_NESTING_DEPTH}. Nodes that open
   * at the same place are one level: the parser reads a collection as a map key first.
   */
  const firstTooDeep = (): number => {
    let depth = -1;
    let last = -1;
    for (const frame of stack) {
      const start = skipSpace(text, frame.open);
      if (start !== last) depth++;
      last = start;
      if (depth > MAX_NESTING_DEPTH) return start;
    }
    return last;
  };

  const listener = function (event: jsYaml.EventType, state: jsYaml.State) {
    if (event === "open") {
      // Each nesting level opens at most two nodes (a block value and the collection the
      // parser first reads as a key); past this depth the document is too deep whatever it is.
      if (stack.length > 2 * MAX_NESTING_DEPTH + 2) {
        throw new Stop({
          offset: firstTooDeep(),
          message: `invalid YAML: nesting is deeper than ${MAX_NESTING_DEPTH} levels`,
          isShapeKnown: false,
        });
      }
      stack.push({ open: state.position + shift, children: [] });
      return;
    }
    const frame = stack.pop()!;
    const closed = close(frame, state);
    const parent = stack.at(-1);
    if (parent === undefined) root = closed;
    else parent.children.push(closed);
  };

  let data: unknown;
  try {
    data = jsYaml.load(text, { schema: CORE_SCHEMA, json: true, listener });
  } catch (error) {
    problems.push(problemOf(error, text, shift));
    return { data: undefined, root: undefined, problems: sorted(problems) };
  }
  if (root !== undefined) {
    const deep = deeperThan(root.node, MAX_NESTING_DEPTH);
    if (deep !== undefined) {
      problems.push({
        offset: deep.start,
        message: `invalid YAML: nesting is deeper than ${MAX_NESTING_DEPTH} levels`,
        isShapeKnown: false,
      });
    }
  }
  return { data, root: root?.node, problems: sorted(problems) };
}

/**
 * Pairs a list's items with their nodes. The parser opens no node for an empty block item
 * (`-` and nothing), so an item without a node of the same value gets a node of its own at
 * the next node's place.
 */
function itemsOf(children: readonly Closed[], items: readonly unknown[], start: number) {
  const nodes: SourceNode[] = [];
  let next = 0;
  for (const item of items) {
    const child = children[next];
    if (child !== undefined && Object.is(child.result, item)) {
      nodes.push(child.node);
      next++;
    } else nodes.push({ start: child?.start ?? start });
  }
  return nodes;
}

/** The key as the parser stores it: maps take string keys only. */
function keyString(key: unknown): string {
  if (typeof key === "object" && key !== null && !Array.isArray(key)) return "[object Object]";
  return String(key);
}

/** The first node (in document order) more than `limit` levels below `node`, if any. */
function deeperThan(node: SourceNode, limit: number): SourceNode | undefined {
  const walk = (n: SourceNode, depth: number): SourceNode | undefined => {
    if (depth > limit) return n;
    const children = n.entries !== undefined
      ? [...n.entries.values()].map((e) => e.value)
      : n.items ?? [];
    for (const child of children) {
      const found = walk(child, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return walk(node, 0);
}

function problemOf(error: unknown, text: string, shift: number): YamlProblem {
  if (error instanceof Stop) return error.problem;
  if (error instanceof jsYaml.YAMLException) {
    if (error.reason.startsWith("expected a single document")) {
      return {
        offset: secondDocument(text),
        message: "invalid YAML: expected one document, found more: remove the extra `---`",
        isShapeKnown: false,
      };
    }
    let offset = Math.min((error.mark?.position ?? 0) + shift, text.length);
    const alias = /^unidentified alias "(.*)"$/.exec(error.reason);
    if (alias !== null) {
      // The parser stops after the name; the message points at the alias.
      offset = Math.max(0, text.lastIndexOf(`*${alias[1]}`, offset));
      return {
        offset,
        message: `invalid YAML: unknown alias \`*${alias[1]}\`: its anchor \`&${
          alias[1]
        }\` must come first`,
        isShapeKnown: false,
      };
    }
    return { offset, message: `invalid YAML: ${error.reason}`, isShapeKnown: false };
  }
  // Only pathological input gets here, e.g. a stack exhausted below the nesting bound.
  const message = error instanceof Error ? error.message : String(error);
  return { offset: 0, message: `invalid YAML: ${message}`, isShapeKnown: false };
}

/**
 * Where the second document starts: the first `---` line with content before it. The parser
 * says only that there is more than one.
 */
function secondDocument(text: string): number {
  for (const match of text.matchAll(/^---(?=[ \t\r\n]|$)/gm)) {
    if (skipSpace(text, text.charCodeAt(0) === 0xfeff ? 1 : 0) < match.index) return match.index;
  }
  return 0;
}

function sorted(problems: YamlProblem[]): YamlProblem[] {
  return problems.sort((a, b) => a.offset - b.offset);
}
