/**
 * Maps document paths (`["configurations", 1, "listenerAddress"]`) to 1-based line and
 * column in the YAML source, through the {@linkcode SourceNode} tree of the parsed document.
 *
 * @module
 */
import { LineIndex } from "../core/line_index.ts";
import { type ConfigIssue, formatPath } from "./issue.ts";
import type { SourceEntry, SourceNode } from "../core/yaml.ts";

/** Which part of a `key: value` pair an issue points at. */
export type Target = "value" | "key";

interface Found {
  /** Deepest node reached; `undefined` for an empty document. */
  readonly node: SourceNode | undefined;
  /** The entry holding `node`, when `node` is a map value. */
  readonly entry: SourceEntry | undefined;
  /** Whether the whole path was found. */
  readonly isComplete: boolean;
}

/**
 * Finds positions of paths in one parsed document. Locating an issue costs the depth of its
 * path, not the size of the document; the first position asked for indexes the line starts.
 */
export class Locator {
  readonly #text: string;
  readonly #root: () => SourceNode | undefined;
  readonly #file: string;
  #lines: LineIndex | undefined;

  /**
   * @param text the source the offsets are in
   * @param root the document's positions, asked for on the first issue that needs one;
   *   `undefined` when there is no document
   * @param file the name to put in issues
   */
  constructor(text: string, root: () => SourceNode | undefined, file: string) {
    this.#text = text;
    this.#root = root;
    this.#file = file;
  }

  /** Whether `path` exists in the document (a key written with an empty value counts). */
  has(path: readonly PropertyKey[]): boolean {
    return this.#find(path).isComplete;
  }

  /** Line and column (1-based, in UTF-16 code units) of the source offset `offset`. */
  position(offset: number): { line: number; column: number } {
    return (this.#lines ??= new LineIndex(this.#text)).position(offset);
  }

  /**
   * An issue at `path`. Points at the value (or the key, with `target: "key"`); when the path
   * is not in the document, at the deepest part of it that is.
   */
  issue(path: readonly PropertyKey[], message: string, target: Target = "value"): ConfigIssue {
    const found = this.#find(path);
    const offset = target === "key" && found.isComplete && found.entry !== undefined
      ? found.entry.keyStart
      : found.node?.start ?? 0;
    return { file: this.#file, ...this.position(offset), path: formatPath(path), message };
  }

  /** An issue at a source offset, for problems that have no path (YAML syntax). */
  issueAtOffset(offset: number, message: string): ConfigIssue {
    return { file: this.#file, ...this.position(offset), path: "", message };
  }

  #find(path: readonly PropertyKey[]): Found {
    let node = this.#root();
    let entry: SourceEntry | undefined;
    for (const segment of path) {
      if (node?.target !== undefined) node = node.target;
      let next: SourceNode | undefined;
      let nextEntry: SourceEntry | undefined;
      if (node?.entries !== undefined) {
        nextEntry = node.entries.get(String(segment));
        next = nextEntry?.value;
      } else if (node?.items !== undefined && typeof segment === "number") {
        next = node.items[segment];
      }
      if (next === undefined) return { node, entry, isComplete: false };
      node = next;
      entry = nextEntry;
    }
    return { node, entry, isComplete: true };
  }
}
