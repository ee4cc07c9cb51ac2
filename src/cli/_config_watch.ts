/**
 * What triggers a config reload in `serve`: SIGHUP, and with `--watch-config` a change in
 * the config file's directory.
 *
 * @module
 */

/** Quiet time after the last file event before a reload: editors and ConfigMaps write in bursts. */
export const WATCH_DEBOUNCE_MS = 200;

/** Options of {@linkcode watchConfigDir}. */
export interface WatchConfigOptions {
  /** Called once per burst of events, {@linkcode WATCH_DEBOUNCE_MS} after the last one. */
  readonly onChange: () => void;
  /** Stops watching. */
  readonly signal: AbortSignal;
  /** @default {WATCH_DEBOUNCE_MS} */
  readonly debounceMs?: number;
}

/**
 * Watches the DIRECTORY of `path`, not the file: a Kubernetes ConfigMap volume updates by
 * swapping its `..data` symlink, and editors replace files by rename, so a watch on the file
 * itself would follow the old inode and miss the change. Every event in the directory
 * counts; the reload skips bytes it runs already.
 * @returns resolves when `signal` aborts (or the directory goes away)
 * @throws what `Deno.watchFs` throws (`NotFound`, `PermissionDenied`) before watching
 */
export async function watchConfigDir(path: string, options: WatchConfigOptions): Promise<void> {
  if (options.signal.aborted) return;
  const watcher = Deno.watchFs(directoryOf(path), { recursive: false });
  const debounceMs = options.debounceMs ?? WATCH_DEBOUNCE_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    clearTimeout(timer);
    try {
      watcher.close();
    } catch {
      // closed already
    }
  };
  options.signal.addEventListener("abort", stop, { once: true });
  try {
    for await (const _event of watcher) {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timer = undefined;
        if (!options.signal.aborted) options.onChange();
      }, debounceMs);
    }
  } catch (error) {
    if (!options.signal.aborted) throw error;
  } finally {
    options.signal.removeEventListener("abort", stop);
    stop();
  }
}

/** The directory part of a path: `config.yaml` → `.`, `/etc/lb/config.yaml` → `/etc/lb`. */
export function directoryOf(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return ".";
  return slash === 0 ? "/" : path.slice(0, slash);
}

/**
 * Calls `onHangup` on every SIGHUP until the returned function is called. No-op off Unix.
 */
export function onSighup(onHangup: () => void): () => void {
  if (Deno.build.os === "windows") return () => {};
  Deno.addSignalListener("SIGHUP", onHangup);
  return () => Deno.removeSignalListener("SIGHUP", onHangup);
}
