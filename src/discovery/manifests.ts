/**
 * Builds an {@linkcode Inventory} from Kubernetes manifests on disk — `kubectl get -o yaml`
 * output, `helm template` output or hand-written fixtures — so pools can be resolved and
 * explained without a cluster.
 *
 * @module
 */
import { LineCounter, parseAllDocuments } from "yaml";
import type { EndpointSliceInfo, Inventory, NodeInfo, ServiceInfo } from "../core/inventory.ts";
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
    throw new Error(`Cannot read manifests from "${path}": ${messageOf(error)}`, {
      cause: error,
    });
  }
  const sources: ManifestSource[] = [];
  for (const file of files) {
    try {
      sources.push({ name: file, text: await Deno.readTextFile(file) });
    } catch (error) {
      throw new Error(`Cannot read manifest "${file}": ${messageOf(error)}`, { cause: error });
    }
  }
  return parseManifests(sources);
}

/**
 * Builds an inventory from manifest texts, in order.
 *
 * Each text holds YAML (or JSON) documents separated by `---`. A document is one object, or
 * a `kind: List` (or any `*List` kind) whose `items` are objects. Services, Nodes,
 * EndpointSlices (v1 and v1beta1) and Endpoints are used; every other kind is skipped
 * without a word, so whole `helm template` output can be fed in. An object defined again
 * replaces the earlier one, with a warning. Endpoints become EndpointSlices only for
 * Services that have no EndpointSlice of their own, as Kubernetes mirrors them.
 *
 * @throws {SyntaxError} when any document is not valid YAML; the message has one line per
 *   broken document, `name:line:column: problem`
 */
export function parseManifests(sources: readonly ManifestSource[]): LoadedManifests {
  const collector = new Collector();
  const errors: string[] = [];
  for (const source of sources) {
    const lineCounter = new LineCounter();
    const documents = parseAllDocuments(source.text, { lineCounter, prettyErrors: false });
    const where = (offset: number) => {
      const { line, col } = lineCounter.linePos(offset);
      return `${source.name}:${line}:${col}`;
    };
    for (const document of documents) {
      const [error] = document.errors;
      if (error !== undefined) {
        // Later errors of one document are mostly echoes of the first.
        errors.push(`${where(error.pos[0])}: ${error.message}`);
        continue;
      }
      if (errors.length > 0) continue;
      const start = document.contents?.range[0] ?? document.range[0];
      let content: unknown;
      try {
        content = document.toJS({ maxAliasCount: 1000 });
      } catch (error) {
        errors.push(`${where(start)}: ${messageOf(error)}`);
        continue;
      }
      const items = listItems(content);
      if (items === undefined) {
        collector.add(content, where(start));
        continue;
      }
      items.forEach((item, i) => {
        const node = document.getIn(["items", i], true) as { range?: [number, number, number] };
        collector.add(item, where(node?.range?.[0] ?? start));
      });
    }
  }
  // One line per broken document, each `name:line:column: problem`, first one first.
  if (errors.length > 0) throw new SyntaxError(errors.join("\n"));
  return collector.build();
}

function listItems(content: unknown): unknown[] | undefined {
  if (typeof content !== "object" || content === null || Array.isArray(content)) {
    return undefined;
  }
  const { kind, items } = content as { kind?: unknown; items?: unknown };
  if (typeof kind !== "string" || !kind.endsWith("List")) return undefined;
  return Array.isArray(items) ? items : [];
}

/** Accumulates converted objects, remembering where each came from. */
class Collector {
  readonly #services = new Map<string, ServiceInfo>();
  readonly #nodes = new Map<string, NodeInfo>();
  readonly #slices = new Map<string, EndpointSliceInfo>();
  /** Endpoints objects, as slices, by `namespace/name`. */
  readonly #endpoints = new Map<string, readonly EndpointSliceInfo[]>();
  /** `Kind key` → where it was defined. */
  readonly #origins = new Map<string, string>();
  readonly #warnings: string[] = [];

  add(object: unknown, where: string): void {
    let converted;
    try {
      converted = convertObject(object);
    } catch (error) {
      this.#warnings.push(`${where}: ${messageOf(error)}; skipped`);
      return;
    }
    if (converted === undefined) return;
    const id = `${converted.kind} ${converted.key}`;
    const previous = this.#origins.get(id);
    if (previous !== undefined) {
      this.#warnings.push(
        `${where}: ${id} is defined again (first at ${previous}); using this one`,
      );
    }
    this.#origins.set(id, where);
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

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
