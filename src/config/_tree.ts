/**
 * One linear pass over a parsed YAML document: resolves aliases, finds duplicate keys, alias
 * cycles and alias bombs, and converts the document to plain data.
 *
 * The `yaml` package can do most of this itself, but not in linear time: `Alias.resolve`
 * scans the document up to the alias for every alias, and `uniqueKeys` compares every key
 * with every earlier key of its map. A config of 40,000 aliases or 100,000 keys then takes
 * minutes. Here every node is visited once, and every alias costs a map look-up.
 *
 * @module
 */
import {
  type Alias,
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  type Node,
} from "yaml";

/**
 * Most values that aliases may add to the document by expansion. Real configs use a handful;
 * "billion laughs" documents multiply a few bytes into billions of values.
 */
export const MAX_ALIAS_EXPANSION = 100_000;

/** Deepest nesting of maps and lists accepted. A config needs fewer than ten levels. */
export const MAX_NESTING_DEPTH = 100;

/** A problem found by {@linkcode indexTree}, at a source offset. */
export interface TreeProblem {
  readonly offset: number;
  readonly message: string;
  /** Whether the document still has a definite shape (only duplicate keys leave one). */
  readonly isShapeKnown: boolean;
}

/** What {@linkcode indexTree} learned about a document. */
export interface TreeIndex {
  /** Node each resolvable alias refers to. */
  readonly aliases: ReadonlyMap<Alias, Node>;
  /** In document order. */
  readonly problems: readonly TreeProblem[];
}

function keyId(node: unknown): string | undefined {
  if (!isScalar(node)) return undefined;
  return `${typeof node.value}:${String(node.value)}`;
}

/**
 * Walks `doc` once. Anchors are looked up by name as they appear, so an alias refers to the
 * last anchor of its name before it, as YAML requires.
 */
export function indexTree(doc: Document): TreeIndex {
  const aliases = new Map<Alias, Node>();
  const problems: TreeProblem[] = [];
  const anchors = new Map<string, Node>();
  /** Values each completed node stands for once aliases are expanded. */
  const sizes = new Map<Node, number>();
  /** Nodes being walked, for alias cycles. */
  const open = new Set<Node>();
  let expansion = 0;
  let isBomb = false;
  let isTooDeep = false;

  const walk = (node: unknown, depth: number): number => {
    if (node === null || node === undefined || typeof node !== "object") return 1;
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      const offset = node.range?.[0] ?? 0;
      if (target === undefined) {
        problems.push({
          offset,
          message:
            `invalid YAML: unknown alias \`*${node.source}\`: its anchor \`&${node.source}\` must come first`,
          isShapeKnown: false,
        });
        return 1;
      }
      if (open.has(target)) {
        problems.push({
          offset,
          message:
            `invalid YAML: alias \`*${node.source}\` refers to a value that contains it: a config cannot be recursive`,
          isShapeKnown: false,
        });
        return 1;
      }
      aliases.set(node, target);
      const size = sizes.get(target) ?? 1;
      expansion += size;
      if (expansion > MAX_ALIAS_EXPANSION && !isBomb) {
        isBomb = true;
        problems.push({
          offset,
          message:
            `invalid YAML: aliases expand to more than ${MAX_ALIAS_EXPANSION} values: reduce the use of \`*${node.source}\``,
          isShapeKnown: false,
        });
      }
      return size;
    }
    const n = node as Node;
    if (depth > MAX_NESTING_DEPTH) {
      if (!isTooDeep) {
        isTooDeep = true;
        problems.push({
          offset: n.range?.[0] ?? 0,
          message: `invalid YAML: nesting is deeper than ${MAX_NESTING_DEPTH} levels`,
          isShapeKnown: false,
        });
      }
      return 1;
    }
    open.add(n);
    if (n.anchor !== undefined) anchors.set(n.anchor, n);
    let size = 1;
    if (isMap(n)) {
      const seen = new Set<string>();
      for (const pair of n.items) {
        const id = keyId(pair.key);
        if (id !== undefined) {
          if (seen.has(id)) {
            problems.push({
              offset: (pair.key as Node).range?.[0] ?? 0,
              message: `duplicate key \`${String((pair.key as { value: unknown }).value)}\``,
              isShapeKnown: true,
            });
          }
          seen.add(id);
        }
        size += walk(pair.key, depth + 1) + walk(pair.value, depth + 1);
      }
    } else if (isSeq(n)) {
      for (const item of n.items) size += walk(item, depth + 1);
    } else if (isPair(n)) {
      size += walk((n as { key: unknown }).key, depth + 1) +
        walk((n as { value: unknown }).value, depth + 1);
    }
    open.delete(n);
    sizes.set(n, size);
    return size;
  };

  walk(doc.contents, 0);
  problems.sort((a, b) => a.offset - b.offset);
  return { aliases, problems };
}

/**
 * The document as plain data, like `Document.toJS()`: maps become objects (keys as strings),
 * lists arrays, scalars their values; an alias becomes the same object as its anchor's value.
 * Only for documents whose {@linkcode indexTree} found no problem of unknown shape.
 */
export function toData(doc: Document, index: TreeIndex): unknown {
  const done = new Map<Node, unknown>();
  const convert = (node: unknown): unknown => {
    if (node === null || node === undefined) return null;
    if (typeof node !== "object") return node;
    if (isAlias(node)) {
      const target = index.aliases.get(node);
      return target === undefined ? null : (done.get(target) ?? convert(target));
    }
    let value: unknown;
    if (isScalar(node)) value = node.value;
    else if (isMap(node)) {
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const name = keyString(convert(pair.key));
        const item = convert(pair.value);
        if (name === "__proto__") {
          Object.defineProperty(out, name, {
            value: item,
            writable: true,
            enumerable: true,
            configurable: true,
          });
        } else out[name] = item;
      }
      value = out;
    } else if (isSeq(node)) value = node.items.map(convert);
    else return null;
    done.set(node as Node, value);
    return value;
  };
  return convert(doc.contents);
}

function keyString(key: unknown): string {
  if (key === null || key === undefined) return "";
  if (typeof key === "object") return JSON.stringify(key) ?? "";
  return String(key);
}
