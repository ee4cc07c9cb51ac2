/**
 * Builds an {@linkcode Inventory} from Kubernetes manifests on disk — `kubectl get -o yaml`
 * output, `helm template` output or hand-written fixtures — so pools can be resolved and
 * explained without a cluster.
 *
 * @module
 */
import { LineIndex } from "../core/line_index.ts";
import { parseYaml, type SourceNode } from "../core/yaml.ts";
import type { EndpointSliceInfo, Inventory, NodeInfo, ServiceInfo } from "../core/inventory.ts";
import { errorMessage, fileErrorMessage } from "../core/error_message.ts";
import { convertObject } from "./convert.ts";

/** An inventory read from manifests, with what the reader noticed on the way. */
export interface LoadedManifests {
  /** `hasEndpointSlices` is true: manifests are taken to describe all there is. */
  inventory: Inventory;
  /** Each prefixed with `file:line`, e.g. a Service defined twice. */
  warnings: string[];
}

/** One manifest text and the name to show in messages. */
export interface ManifestSource {
  /** File name (or e.g. `<stdin>`) used in messages. */
  readonly name: string;
  /** YAML or JSON: one or more documents, `List` objects included. */
  readonly text: string;
}

const MANIFEST_EXTENSIONS = [".yaml", ".yml", ".json"];

/**
 * Deepest nesting of maps and lists accepted in a manifest document. The deepest real objects,
 * CustomResourceDefinitions with their OpenAPI schemas, need a few dozen levels.
 */
export const MAX_MANIFEST_DEPTH = 200;

/**
 * Reads manifests from a file or a directory and builds an inventory.
 *
 * A directory is read recursively: every `*.yaml`, `*.yml` and `*.json` file, in sorted
 * path order; hidden entries (`.git`, and the `..data` links of a mounted ConfigMap) are
 * skipped, symbolic links followed. See {@linkcode parseManifests} for what a file may hold.
 *
 * @throws {Error} when the path cannot be read
 * @throws {SyntaxError} when any file is not valid YAML; the message has one line per broken
 *   document, `file:line:column: problem`
 */
export async function loadManifests(path: string): Promise<LoadedManifests> {
  let files: string[];
  try {
    const info = await Deno.stat(path);
    files = info.isDirectory ? await listManifestFiles(path) : [path];
  } catch (error) {
    throw new Error(`Cannot read manifests from "${path}": ${fileErrorMessage(error)}`, {
      cause: error,
    });
  }
  const sources: ManifestSource[] = [];
  for (const file of files) {
    try {
      sources.push({ name: file, text: await Deno.readTextFile(file) });
    } catch (error) {
      throw new Error(`Cannot read manifest "${file}": ${fileErrorMessage(error)}`, {
        cause: error,
      });
    }
  }
  return parseManifests(sources);
}

/**
 * Builds an inventory from manifest texts, in order.
 *
 * Each text holds YAML (or JSON) documents separated by `---`. A document is one object, a
 * `kind: List` (or any `*List` kind) whose `items` are objects, or a sequence (JSON array)
 * of objects, as support bundles write them. Services, Nodes, EndpointSlices (v1 and
 * v1beta1) and Endpoints are used; every other kind is skipped without a word, so whole
 * `helm template` output can be fed in, but a text with no Kubernetes object at all (nothing
 * with a `kind`) is named in a warning.
 *
 * An object met again (same kind, namespace and name) is merged quietly when it is an
 * identical copy, as `kubectl get` dumps repeat `default/kubernetes`; a conflicting copy
 * (different `uid`, `resourceVersion` or contents) replaces the earlier one with a warning
 * naming both places. Endpoints become EndpointSlices only for Services that have no
 * EndpointSlice of their own, as Kubernetes mirrors them.
 *
 * @throws {SyntaxError} when any document is not valid YAML or nests maps and lists deeper
 *   than {@linkcode MAX_MANIFEST_DEPTH}; the message has one line per broken document,
 *   `name:line:column: problem`
 */
export function parseManifests(sources: readonly ManifestSource[]): LoadedManifests {
  const collector = new Collector();
  const errors: string[] = [];
  for (const source of sources) {
    const lines = new LineIndex(source.text);
    const where = (offset: number) => {
      const { line, column } = lines.position(offset);
      return `${source.name}:${line}:${column}`;
    };
    let hasObject = false;
    documentsOf(source.text).forEach(({ offset, text }, d) => {
      const yaml = parseYaml(text, { maxDepth: MAX_MANIFEST_DEPTH });
      const [problem] = yaml.problems;
      if (problem !== undefined) {
        // Later problems of one document are mostly echoes of the first.
        errors.push(`${where(offset + problem.offset)}: ${problem.message}`);
        return;
      }
      if (errors.length > 0) return;
      const content = yaml.data;
      if (content === undefined || content === null) return; // an empty document
      const start = offset + (yaml.root()?.start ?? 0);
      const doc = `document ${d + 1}`;
      const listed = listItems(content);
      if (listed === undefined) {
        hasObject ||= isKubernetesObject(content);
        collector.add(content, where(start), doc);
        return;
      }
      hasObject ||= listed.isObject || listed.items.some(isKubernetesObject);
      let list: SourceNode | undefined = yaml.root();
      for (const key of listed.path) list = list?.entries?.get(key)?.value;
      listed.items.forEach((item, i) => {
        const at = list?.items?.[i]?.start;
        collector.add(item, where(at === undefined ? start : offset + at), `${doc}, item ${i + 1}`);
      });
    });
    if (!hasObject && errors.length === 0) {
      collector.warn(`${source.name}: no Kubernetes object (nothing with a "kind") found; ignored`);
    }
  }
  // One line per broken document, each `name:line:column: problem`, first one first.
  if (errors.length > 0) throw new SyntaxError(errors.join("\n"));
  return collector.build();
}

/**
 * The documents of a YAML stream, each with its offset in `text`. A line that starts with
 * `---` (then a space or its end) can only be a document start: YAML forbids it inside a
 * document, so the stream splits there without being parsed. What comes before the first
 * one is a document when it holds more than comments and directives.
 */
function documentsOf(text: string): { offset: number; text: string }[] {
  const documents: { offset: number; text: string }[] = [];
  let start = 0;
  for (const match of text.matchAll(/^---(?=[ \t\r\n]|$)/gm)) {
    const before = text.slice(start, match.index);
    if (start > 0 || /^[ \t]*[^\s#%]/m.test(before)) {
      documents.push({ offset: start, text: before });
    }
    start = match.index;
  }
  documents.push({ offset: start, text: text.slice(start) });
  return documents;
}

/** An object with a `kind`: what the API server would accept as one. */
function isKubernetesObject(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    typeof (value as { kind?: unknown }).kind === "string";
}

/**
 * The objects a document lists: a top-level sequence, or the `items` of a `*List` kind.
 * `path` locates the items in the document; `isObject` is true for a `*List`, itself an object.
 */
function listItems(
  content: unknown,
): { items: unknown[]; path: string[]; isObject: boolean } | undefined {
  if (Array.isArray(content)) return { items: content, path: [], isObject: false };
  if (typeof content !== "object" || content === null) return undefined;
  const { kind, items } = content as { kind?: unknown; items?: unknown };
  if (typeof kind !== "string" || !kind.endsWith("List")) return undefined;
  return { items: Array.isArray(items) ? items : [], path: ["items"], isObject: true };
}

/** Metadata that tells two copies of one object apart. */
function versionOf(object: unknown): { uid?: string; resourceVersion?: string } {
  const meta = (object as { metadata?: unknown }).metadata;
  if (typeof meta !== "object" || meta === null) return {};
  const { uid, resourceVersion } = meta as { uid?: unknown; resourceVersion?: unknown };
  return {
    ...(typeof uid === "string" ? { uid } : {}),
    ...(typeof resourceVersion === "string" ? { resourceVersion } : {}),
  };
}

/** JSON with object keys sorted, so copies that differ only in key order compare equal. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/** Where an object was met, and what tells it from another copy. */
interface Origin {
  /** `file:line:column (document N[, item M])`. */
  readonly place: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  /** {@linkcode canonical} form of the converted object: what resolution reads. */
  readonly contents: string;
}

/** Accumulates converted objects, remembering where each came from. */
class Collector {
  readonly #services = new Map<string, ServiceInfo>();
  readonly #nodes = new Map<string, NodeInfo>();
  readonly #slices = new Map<string, EndpointSliceInfo>();
  /** Endpoints objects, as slices, by `namespace/name`. */
  readonly #endpoints = new Map<string, readonly EndpointSliceInfo[]>();
  /** `Kind key` → where it was defined. */
  readonly #origins = new Map<string, Origin>();
  readonly #warnings: string[] = [];

  warn(message: string): void {
    this.#warnings.push(message);
  }

  /**
   * @param where `file:line:column`, the prefix of a conversion problem
   * @param doc `document N` or `document N, item M`, to name the copy in duplicate warnings
   */
  add(object: unknown, where: string, doc: string): void {
    let converted;
    try {
      converted = convertObject(object);
    } catch (error) {
      this.#warnings.push(`${where}: ${errorMessage(error)}; skipped`);
      return;
    }
    if (converted === undefined) return;
    const id = `${converted.kind} ${converted.key}`;
    const { kind: _, key: __, ...data } = converted;
    const origin: Origin = {
      place: `${where} (${doc})`,
      ...versionOf(object),
      contents: canonical(data),
    };
    const previous = this.#origins.get(id);
    if (previous !== undefined) {
      const differences = [
        ...(previous.uid !== origin.uid ? ["uid"] : []),
        ...(previous.resourceVersion !== origin.resourceVersion ? ["resourceVersion"] : []),
        ...(previous.contents !== origin.contents
          ? [converted.kind === "Service" ? "spec" : "contents"]
          : []),
      ];
      // An identical copy (dumps overlap, e.g. default/kubernetes in every Service list).
      if (differences.length === 0) return;
      this.#warnings.push(
        `Conflicting copies of ${id} (different ${differences.join(", ")}): ` +
          `${previous.place} and ${origin.place}; using the one at ${origin.place}`,
      );
    }
    this.#origins.set(id, origin);
    switch (converted.kind) {
      case "Service":
        this.#services.set(converted.key, converted.service);
        break;
      case "Node":
        this.#nodes.set(converted.key, converted.node);
        break;
      case "EndpointSlice":
        this.#slices.set(converted.key, converted.slice);
        break;
      case "Endpoints":
        this.#endpoints.set(converted.key, converted.slices);
        break;
    }
  }

  build(): LoadedManifests {
    const endpointSlices = new Map(this.#slices);
    const sliced = new Set<string>();
    for (const slice of this.#slices.values()) {
      sliced.add(`${slice.namespace}/${slice.serviceName}`);
    }
    for (const [key, slices] of this.#endpoints) {
      if (sliced.has(key)) continue;
      for (const slice of slices) {
        const sliceKey = `${slice.namespace}/${slice.name}`;
        if (!endpointSlices.has(sliceKey)) endpointSlices.set(sliceKey, slice);
      }
    }
    return {
      inventory: {
        services: this.#services,
        nodes: this.#nodes,
        endpointSlices,
        hasEndpointSlices: true,
      },
      warnings: this.#warnings,
    };
  }
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? `${dir}${name}` : `${dir}/${name}`;
}

/** Manifest files under `dir`, sorted; directories reached twice by links are read once. */
async function listManifestFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  const seen = new Set<string>();
  const walk = async (path: string): Promise<void> => {
    const real = await Deno.realPath(path);
    if (seen.has(real)) return;
    seen.add(real);
    for await (const entry of Deno.readDir(path)) {
      if (entry.name.startsWith(".")) continue;
      const child = joinPath(path, entry.name);
      let isDirectory = entry.isDirectory;
      let isFile = entry.isFile;
      if (entry.isSymlink) {
        const target = await Deno.stat(child).catch(() => undefined);
        if (target === undefined) continue;
        isDirectory = target.isDirectory;
        isFile = target.isFile;
      }
      if (isDirectory) await walk(child);
      else if (isFile && MANIFEST_EXTENSIONS.some((ext) => entry.name.endsWith(ext))) {
        files.push(child);
      }
    }
  };
  await walk(dir);
  return files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
