/**
 * Maps document paths (`["configurations", 1, "listenerAddress"]`) to 1-based line and
 * column in the YAML source, through the parsed document's node ranges.
 *
 * @module
 */
import {
  type Alias,
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type LineCounter,
  type Node,
  type Pair,
  type YAMLMap,
} from "yaml";
import { type ConfigIssue, formatPath } from "./issue.ts";

/** Which part of a `key: value` pair an issue points at. */
export type Target = "value" | "key";

interface Found {
  /** Deepest node reached; `undefined` for an empty document. */
  readonly node: Node | undefined;
  /** Key node of the pair holding `node`, when `node` is a map value. */
  readonly keyNode: Node | undefined;
  /** Whether the whole path was found. */
  readonly isComplete: boolean;
}

function keyText(node: unknown): string {
  return isScalar(node) ? String(node.value) : String(node);
}

/**
 * Finds positions of paths in one parsed document. Each map's keys are indexed on first use,
 * so locating an issue costs the depth of its path, not the size of the document.
 */
export class Locator {
  readonly #doc: Document;
  readonly #lines: LineCounter;
  readonly #file: string;
  readonly #aliases: ReadonlyMap<Alias, Node>;
  readonly #keys = new WeakMap<YAMLMap, Map<string, Pair>>();

  /**
   * @param aliases the node each alias refers to; aliases not in it are treated as values
   *   without children
   */
  constructor(
    doc: Document,
    lines: LineCounter,
    file: string,
    aliases: ReadonlyMap<Alias, Node> = new Map(),
  ) {
    this.#doc = doc;
    this.#lines = lines;
    this.#file = file;
    this.#aliases = aliases;
  }

  /** Whether `path` exists in the document (a key written with an empty value counts). */
  has(path: readonly PropertyKey[]): boolean {
    return this.#find(path).isComplete;
  }

  /** Line and column of the source offset `offset`. */
  position(offset: number): { line: number; column: number } {
    const { line, col } = this.#lines.linePos(offset);
    return { line, column: col };
  }

  /**
   * An issue at `path`. Points at the value (or the key, with `target: "key"`); when the path
   * is not in the document, at the deepest part of it that is.
   */
  issue(path: readonly PropertyKey[], message: string, target: Target = "value"): ConfigIssue {
    const found = this.#find(path);
    const node = target === "key" && found.isComplete && found.keyNode ? found.keyNode : found.node;
    const offset = node?.range?.[0] ?? 0;
    return { file: this.#file, ...this.position(offset), path: formatPath(path), message };
  }

  /** An issue at a source offset, for problems that have no path (YAML syntax). */
  issueAtOffset(offset: number, message: string): ConfigIssue {
    return { file: this.#file, ...this.position(offset), path: "", message };
  }

  #find(path: readonly PropertyKey[]): Found {
    let node: unknown = this.#doc.contents ?? undefined;
    let keyNode: Node | undefined;
    for (const segment of path) {
      if (isAlias(node)) node = this.#aliases.get(node);
      let next: unknown;
      let nextKey: Node | undefined;
      if (isMap(node)) {
        const pair = this.#pairs(node).get(String(segment));
        if (pair !== undefined) {
          nextKey = pair.key as Node;
          next = pair.value ?? pair.key;
        }
      } else if (isSeq(node) && typeof segment === "number") {
        next = node.items[segment];
      }
      if (next === undefined || next === null) {
        return { node: node as Node | undefined, keyNode, isComplete: false };
      }
      node = next;
      keyNode = nextKey;
    }
    return { node: node as Node | undefined, keyNode, isComplete: true };
  }

  /** The first pair of each key of `map`. */
  #pairs(map: YAMLMap): Map<string, Pair> {
    let pairs = this.#keys.get(map);
    if (pairs === undefined) {
      pairs = new Map();
      for (const pair of map.items) {
        const name = keyText(pair.key);
        if (!pairs.has(name)) pairs.set(name, pair);
      }
      this.#keys.set(map, pairs);
    }
    return pairs;
  }
}
