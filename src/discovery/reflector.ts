/**
 * One resource's list+watch loop and its store, after client-go's reflector: list (paginated)
 * for a consistent snapshot and its `resourceVersion`, then watch from it with bookmarks; a
 * dropped or timed-out watch resumes from the last seen `resourceVersion`; `410 Gone` (as HTTP
 * status or as an `ERROR` event) forces a relist. Every other failure (unreachable, an error
 * status, a body that is not a list or a watch line that is not an event, a watch that goes
 * silent) keeps the store as it is and retries after an exponential backoff with jitter. The
 * loop ends only when the signal aborts.
 * See https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
 *
 * @module
 */
import {
  type ApiClient,
  ApiError,
  apiError,
  classifyError,
  excerpt,
  GoneError,
  InvalidResponseError,
  readBody,
  statusMessage,
} from "./api_client.ts";
import {
  asList,
  convertObject,
  objectKey,
  type ObjectKind,
  parseEvent,
  sameStore,
  type StoredObject,
  type WatchEvent,
} from "./_wire.ts";

export type { ObjectKind, StoredObject };

/** The parts of an inventory a reflector feeds. */
export type ResourceName = "services" | "nodes" | "endpoints";

/** Where a resource is listed and watched, e.g. `{ path: "/api/v1/nodes", kind: "Node" }`. */
export interface ResourceTarget {
  readonly path: string;
  readonly kind: ObjectKind;
}

/** Exponential backoff between retries; each wait is drawn from `[d/2, d]` (jitter). */
export interface BackoffOptions {
  /** First retry delay. @default {500} */
  readonly initialMs: number;
  /** Cap of the delay. @default {30000} */
  readonly maxMs: number;
}

/** Default backoff of a reflector. */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000 };
/** Default server-side watch timeout in seconds. */
export const DEFAULT_WATCH_TIMEOUT_SECONDS = 300;
/** Extra client-side wait beyond the server timeout before a silent watch is dropped. */
export const DEFAULT_WATCH_IDLE_GRACE_MS = 30_000;
/** A watch that ends cleanly this quickly without events is retried with backoff, not at once. */
const WATCH_MIN_HEALTHY_MS = 1_000;

/**
 * Wakes retries that wait out an unreachable API: when the API answers again, the loops
 * backing off from the same outage retry now instead of finishing a multi-second wait. Waits
 * after other failures (5xx, 401/403, bad bodies) are not cut short, so they keep their backoff.
 */
export class RetryWaker {
  readonly #sleepers = new Set<() => void>();

  /** Ends every current wakeable wait. */
  wake(): void {
    for (const wake of [...this.#sleepers]) wake();
  }

  /**
   * Waits `ms`, or until `signal` aborts, or (when `isWakeable`) until
   * {@linkcode RetryWaker.wake}, whichever is first.
   */
  sleep(ms: number, signal: AbortSignal, isWakeable = false): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.#sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      if (isWakeable) this.#sleepers.add(done);
    });
  }
}

/** Options of {@linkcode Reflector}. */
export interface ReflectorOptions {
  /** Which inventory part this loop feeds. */
  readonly resource: ResourceName;
  /** Namespace watched; absent for all namespaces (and for cluster-scoped Nodes). */
  readonly namespace?: string;
  /** The API client; shared by the reflectors of one discovery. */
  readonly client: ApiClient;
  /**
   * Where to list and watch, asked before every list and watch; `undefined` when no API
   * serves the resource (the store is emptied and the loop looks again after `backoff.maxMs`).
   */
  resolveTarget(): Promise<ResourceTarget | undefined>;
  /** Ends the loop and every request. */
  readonly signal: AbortSignal;
  /** Retry delays. @default {{ initialMs: 500, maxMs: 30000 }} */
  readonly backoff?: BackoffOptions;
  /** Jitter source in [0, 1). @default {Math.random} */
  readonly random?: () => number;
  /** Page size of list requests. @default {500} */
  readonly pageSize?: number;
  /** Server-side watch timeout (`timeoutSeconds`). @default {300} */
  readonly watchTimeoutSeconds?: number;
  /**
   * A watch that sends no byte for this long is dropped and re-opened (half-open connections,
   * hung proxies). @default {watchTimeoutSeconds * 1000 + 30000}
   */
  readonly watchIdleTimeoutMs?: number;
  /** Ends waits after an unreachable API early (see {@linkcode RetryWaker}). @default {a private one} */
  readonly waker?: RetryWaker;
  /** The store changed. */
  onChange(): void;
  /** A list completed, or a watch opened (the API answers again). */
  onSynced(): void;
  /** A list or watch failed; the loop backs off and retries. */
  onError(error: unknown): void;
  /** The API answered `404` for the resource: the caller should look for it again. */
  onNotFound?(): void;
}

/** Ends a watch so the loop lists again without counting it as a failure. */
class RelistRequest extends Error {
  constructor() {
    super("Relist requested");
    this.name = "RelistRequest";
  }
}

/**
 * One list+watch loop over one resource (in one namespace or all) with its own store.
 *
 * Ownership: the reflector owns its store (read it, never mutate it) and its requests and
 * timers; all of them end when `signal` aborts and {@linkcode Reflector.run} settles.
 */
export class Reflector {
  /** Which inventory part this loop feeds. */
  readonly resource: ResourceName;
  /** Namespace watched, if any. */
  readonly namespace?: string;
  /** Objects by key (`namespace/name`, or `name` for Nodes); replaced on relist, never emptied by errors. */
  readonly store: Map<string, StoredObject> = new Map();
  /** Whether a list has completed at least once. */
  isSynced = false;
  /** The latest failure, until a list completes or a watch opens. */
  error?: unknown;
  readonly #options: ReflectorOptions;
  readonly #backoff: BackoffOptions;
  readonly #random: () => number;
  readonly #waker: RetryWaker;

  /** @param options see {@linkcode ReflectorOptions}; nothing is requested before {@linkcode Reflector.run} */
  constructor(options: ReflectorOptions) {
    this.resource = options.resource;
    if (options.namespace !== undefined) this.namespace = options.namespace;
    this.#options = options;
    this.#backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.#random = options.random ?? Math.random;
    this.#waker = options.waker ?? new RetryWaker();
  }

  /** `services in a`, `nodes`: the resource and its scope, for messages. */
  describe(): string {
    return this.namespace === undefined ? this.resource : `${this.resource} in ${this.namespace}`;
  }

  /** Lists and watches until the signal aborts; never rejects. */
  async run(): Promise<void> {
    const { signal } = this.#options;
    let resourceVersion: string | undefined;
    let attempt = 0;
    while (!signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          resourceVersion = await this.#list();
          this.#synced();
        }
        const outcome = await this.#watch(resourceVersion, {
          onProgress: (rv) => {
            resourceVersion = rv;
            attempt = 0;
          },
        });
        if (outcome === "healthy") {
          attempt = 0;
          continue;
        }
        await this.#waker.sleep(this.#delay(attempt++), signal);
      } catch (error) {
        if (signal.aborted) break;
        if (error instanceof RelistRequest) {
          resourceVersion = undefined;
          continue;
        }
        if (error instanceof GoneError) {
          // History is compacted: relist at once; the store is replaced, not emptied. A second
          // 410 before the watch proved healthy backs off, so a broken server is not hammered.
          resourceVersion = undefined;
          if (attempt++ === 0) continue;
        } else if (error instanceof ApiError && error.status === 404) {
          // The API (or a version of it) went away: look for it again and relist.
          this.#options.onNotFound?.();
          resourceVersion = undefined;
        }
        this.error = error;
        this.#options.onError(error);
        const isWakeable = classifyError(error) === "unreachable";
        await this.#waker.sleep(this.#delay(attempt++), signal, isWakeable);
      }
    }
  }

  #synced(): void {
    this.isSynced = true;
    this.error = undefined;
    this.#options.onSynced();
  }

  #delay(attempt: number): number {
    const base = Math.min(
      this.#backoff.maxMs,
      this.#backoff.initialMs * 2 ** Math.min(attempt, 30),
    );
    return base / 2 + this.#random() * (base / 2);
  }

  /** Lists all pages into a fresh store and swaps it in; returns the list's resourceVersion. */
  async #list(): Promise<string> {
    const target = await this.#options.resolveTarget();
    if (target === undefined) {
      const changed = this.store.size > 0;
      this.store.clear();
      if (changed) this.#options.onChange();
      return "";
    }
    const fresh = new Map<string, StoredObject>();
    const limit = this.#options.pageSize ?? 500;
    let cont: string | undefined;
    let listVersion = "";
    do {
      const query = new URLSearchParams({ limit: String(limit) });
      if (cont) query.set("continue", cont);
      const res = await this.#options.client.get(`${target.path}?${query}`);
      if (res.status !== 200) {
        if (res.status === 410 && cont) {
          // The continue token expired: start the list again.
          fresh.clear();
          cont = undefined;
          continue;
        }
        throw apiError(res.status, res.body, `GET ${target.path}`);
      }
      const list = asList(res.body);
      if (!res.isJson || list === undefined) {
        // A proxy's HTML page or `{}` is not an empty list: keep the store, fail, back off.
        throw new InvalidResponseError(
          `GET ${target.path} returned 200 without a list: ${
            excerpt(res.text ?? JSON.stringify(res.body))
          }`,
        );
      }
      for (const item of list.items) {
        const converted = convertObject(target.kind, item);
        if (converted) fresh.set(converted.key, converted.stored);
      }
      listVersion = list.metadata?.resourceVersion ?? "";
      cont = list.metadata?.continue || undefined;
    } while (cont);
    if (!sameStore(this.store, fresh)) {
      this.store.clear();
      for (const [key, value] of fresh) this.store.set(key, value);
      this.#options.onChange();
    }
    return listVersion;
  }

  /**
   * Watches from `resourceVersion` until the stream ends.
   * @returns `"healthy"` when the stream ended normally (re-watch at once), `"quick"` when it
   *   ended at once without events (re-watch after backoff)
   */
  async #watch(
    resourceVersion: string,
    on: { onProgress(resourceVersion: string): void },
  ): Promise<"healthy" | "quick"> {
    const { signal } = this.#options;
    const target = await this.#options.resolveTarget();
    if (target === undefined) {
      // No API serves the resource: nothing to watch; look again after the longest backoff.
      await this.#waker.sleep(this.#backoff.maxMs, signal);
      this.#options.onNotFound?.();
      throw new RelistRequest();
    }
    const timeoutSeconds = this.#options.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS;
    const idleMs = this.#options.watchIdleTimeoutMs ??
      timeoutSeconds * 1000 + DEFAULT_WATCH_IDLE_GRACE_MS;
    const query = new URLSearchParams({
      watch: "1",
      resourceVersion,
      allowWatchBookmarks: "true",
      timeoutSeconds: String(timeoutSeconds),
    });
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) onAbort(); // aborted while the target was resolved
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    const armIdle = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(
        () =>
          controller.abort(
            new DOMException(`Watch sent nothing for ${idleMs} ms`, "TimeoutError"),
          ),
        idleMs,
      );
    };
    const startedAt = Date.now();
    let events = 0;
    let reader: ReadableStreamDefaultReader<string> | undefined;
    let confirmTimer: ReturnType<typeof setTimeout> | undefined;
    try {
      armIdle();
      const res = await this.#options.client.stream(`${target.path}?${query}`, controller.signal);
      // An abort racing with the response leaves the body unaborted: cancel it ourselves, or a
      // read would wait for the server's timeout.
      const cancelBody = () =>
        void (reader ?? res.body)?.cancel(controller.signal.reason).catch(() => {});
      if (controller.signal.aborted) {
        cancelBody();
        throw controller.signal.reason;
      }
      controller.signal.addEventListener("abort", cancelBody, { once: true });
      if (res.status !== 200) {
        const { body } = await readBody(res);
        if (res.status === 410) throw new GoneError(statusMessage(body) ?? "410 Gone");
        throw apiError(res.status, body, `GET ${target.path}?watch=1`);
      }
      if (!res.body) return "quick";
      // After a failure, an open stream is not proof yet (a proxy may answer 200 and then send
      // garbage): report recovery on the first valid event or once it stayed open a while.
      if (this.error === undefined) this.#synced();
      else confirmTimer = setTimeout(() => this.#synced(), WATCH_MIN_HEALTHY_MS);
      reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        // A cancelled body ends like a finished one: an abort (idle timeout) is a failure.
        if (controller.signal.aborted) throw controller.signal.reason;
        if (done) break;
        armIdle();
        buffer += value;
        let newline: number;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (line === "") continue;
          events++;
          const rv = this.#applyEvent(target.kind, parseEvent(line, target.path));
          if (this.error !== undefined) {
            clearTimeout(confirmTimer);
            this.#synced();
          }
          if (rv) on.onProgress(rv);
        }
      }
      if (buffer.trim() !== "") parseEvent(buffer.trim(), target.path);
    } finally {
      clearTimeout(idleTimer);
      clearTimeout(confirmTimer);
      signal.removeEventListener("abort", onAbort);
      if (reader) await reader.cancel().catch(() => {});
    }
    return events === 0 && Date.now() - startedAt < WATCH_MIN_HEALTHY_MS ? "quick" : "healthy";
  }

  /** Applies one watch event; returns the resourceVersion to resume from. */
  #applyEvent(kind: ObjectKind, event: WatchEvent): string | undefined {
    const object = event.object;
    switch (event.type) {
      case "ERROR": {
        const code = object.code;
        const message = object.message ?? object.reason ?? "watch error";
        if (code === 410) throw new GoneError(message);
        throw new ApiError(message, code ?? 500);
      }
      case "BOOKMARK":
        return object.metadata?.resourceVersion;
      case "ADDED":
      case "MODIFIED": {
        const converted = convertObject(kind, object);
        if (converted) {
          const previous = this.store.get(converted.key);
          if (previous?.resourceVersion !== converted.stored.resourceVersion) {
            this.store.set(converted.key, converted.stored);
            this.#options.onChange();
          }
        }
        return object.metadata?.resourceVersion;
      }
      case "DELETED": {
        const key = objectKey(kind, object);
        if (key !== undefined && this.store.delete(key)) this.#options.onChange();
        return object.metadata?.resourceVersion;
      }
    }
  }
}
