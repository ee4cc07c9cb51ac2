/**
 * Runs the real `serve` command as a child process for reload and handover tests: stderr
 * is collected, `/readyz` and `/metrics` are read over the admin port.
 *
 * @module
 */
import { delay } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url);

/** A running `nautiluslb serve`. */
export interface ServeProcess {
  readonly child: Deno.ChildProcess;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** `/readyz` status, 0 when the admin server does not answer. */
  ready(): Promise<number>;
  /** The `/metrics` text. */
  metrics(): Promise<string>;
  /** Sends SIGKILL unless it exited, and waits for the exit. */
  kill(): Promise<Deno.CommandStatus>;
}

/** Options of {@linkcode spawnServe}. */
export interface SpawnServeOptions {
  /** Arguments after `serve -c CONFIG`. */
  readonly args?: readonly string[];
  /** Runs the command under this prefix, e.g. `["ip", "netns", "exec", "ns"]`. */
  readonly prefix?: readonly string[];
}

/** Starts `serve -c config` with `--unstable-net`; `admin` is its admin port. */
export function spawnServe(
  config: string,
  admin: number,
  options: SpawnServeOptions = {},
): ServeProcess {
  const argv = [
    Deno.execPath(),
    "run",
    "--quiet",
    "-A",
    "--unstable-net",
    new URL("src/main.ts", ROOT).pathname,
    "serve",
    "-c",
    config,
    ...(options.args ?? []),
  ];
  const command = [...(options.prefix ?? []), ...argv];
  const child = new Deno.Command(command[0]!, {
    args: command.slice(1),
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const reading = child.stderr.pipeTo(
    new WritableStream({ write: (chunk) => void (text += decoder.decode(chunk)) }),
  ).catch(() => {});
  const http = (path: string) => fetch(`http://127.0.0.1:${admin}${path}`);
  return {
    child,
    stderr: () => text,
    ready: async () => {
      try {
        const res = await http("/readyz");
        await res.body?.cancel();
        return res.status;
      } catch {
        return 0;
      }
    },
    metrics: async () => await (await http("/metrics")).text(),
    kill: async () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited
      }
      const status = await child.status;
      await reading;
      return status;
    },
  };
}

/** Waits until `/readyz` answers 200. @throws after `ms` with the process's stderr */
export async function waitReady(serve: ServeProcess, ms = 30_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (await serve.ready() === 200) return;
    await delay(50);
  }
  throw new Error(`Not ready after ${ms}ms:\n${serve.stderr()}`);
}

/** One sample's value from Prometheus text, e.g. `metric(text, 'x_total{result="ok"}')`. */
export function metric(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
