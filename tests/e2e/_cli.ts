/**
 * Runs the real CLI entry point (`src/main.ts`) as a child process with the permissions the
 * README documents, never `-A`, so a command that needs more fails the e2e suite.
 *
 * @module
 */

/** The Deno permissions `serve`, `discover` and `check` are documented to need. */
export const DOCUMENTED_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
];

const ROOT = new URL("../../", import.meta.url);

/** What a finished CLI run printed and how it exited. */
export interface CliResult {
  readonly args: readonly string[];
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `deno run <documented permissions> src/main.ts ...args`, to completion. */
export async function runCli(args: readonly string[]): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...DOCUMENTED_PERMISSIONS, "src/main.ts", ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    args,
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/**
 * A long-running CLI child (`serve`, `discover --watch`) whose stdout and stderr are collected
 * as they arrive. The caller stops it with {@linkcode CliProcess.stop}.
 */
export class CliProcess {
  readonly args: readonly string[];
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  readonly #done: Promise<unknown>;

  constructor(args: readonly string[]) {
    this.args = args;
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", ...DOCUMENTED_PERMISSIONS, "src/main.ts", ...args],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#done = Promise.all([
      this.#collect(this.child.stdout, (s) => this.stdout += s),
      this.#collect(this.child.stderr, (s) => this.stderr += s),
    ]);
  }

  async #collect(stream: ReadableStream<Uint8Array>, add: (s: string) => void) {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) add(chunk);
  }

  /** Sends SIGTERM (unless it already exited); resolves to the exit code once output ended. */
  async stop(): Promise<number> {
    try {
      this.child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    const status = await this.child.status;
    await this.#done;
    return status.code;
  }
}
