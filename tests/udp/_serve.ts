/**
 * `serve` as a child process with the permissions `deno task serve` grants (no `-A`), its
 * stderr collected, its admin `/metrics` read as numbers.
 *
 * @module
 */
const ROOT = new URL("../../", import.meta.url);

/** A running `serve`. */
export interface Serve {
  readonly child: Deno.ChildProcess;
  /** Everything written to stderr so far. */
  stderr(): string;
  /**
   * The value of one `/metrics` series, e.g. `nautiluslb_udp_sessions_active{listener="dns"}`;
   * NaN when absent or while the admin server does not answer.
   */
  metric(series: string): Promise<number>;
  /** Resident set size of the process in KiB. */
  rssKiB(): Promise<number>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** Starts `serve -c config` and `extraArgs`; `admin` is the admin address `host:port` in the config. */
export function startServe(
  config: string,
  admin: string,
  extraArgs: readonly string[] = [],
): Serve {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-net",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      "--allow-sys",
      new URL("src/main.ts", ROOT).pathname,
      "serve",
      "-c",
      config,
      ...extraArgs,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const reading = child.stderr.pipeTo(
    new WritableStream({ write: (chunk) => void (text += decoder.decode(chunk)) }),
  ).catch(() => {});
  return {
    child,
    stderr: () => text,
    metric: async (series) => {
      let body: string;
      try {
        body = await (await fetch(`http://${admin}/metrics`)).text();
      } catch {
        return NaN; // not up yet, or gone
      }
      const line = body.split("\n").find((l) => l.startsWith(`${series} `));
      return line === undefined ? NaN : Number(line.slice(series.length + 1));
    },
    rssKiB: async () => {
      // `ps`, not /proc: Deno reads /proc only with every permission.
      const { stdout } = await new Deno.Command("ps", {
        args: ["-o", "rss=", "-p", String(child.pid)],
        stdout: "piped",
      }).output();
      return Number(new TextDecoder().decode(stdout).trim() || NaN);
    },
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // exited
      }
      await child.status;
      await reading;
    },
  };
}
