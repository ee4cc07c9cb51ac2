/**
 * Child processes for the benchmark: each one in its own process group (so killing it
 * also kills what it spawned), pinned to a CPU core, with a raised fd limit, and tracked
 * so {@linkcode killAll} can clean up on any exit path.
 *
 * @module
 */

/** How to start one child process. */
export interface SpawnOptions {
  /** Core list for `taskset -c`, e.g. `"0"`. Not pinned when absent. */
  readonly cpus?: string;
  /** Soft and hard `RLIMIT_NOFILE` via `prlimit`. Unchanged when absent. */
  readonly nofile?: number;
  readonly cwd?: string;
  readonly env?: Record<string, string>;
  /** Keep stdout for {@linkcode Proc.output}; otherwise it is discarded. @default {false} */
  readonly captureStdout?: boolean;
  /** Feed stdin from a pipe that {@linkcode Proc.closeStdin} closes. @default {false} */
  readonly pipeStdin?: boolean;
}

const live = new Set<Proc>();

/**
 * A running child. Its process id is the one of the final program: `taskset` and
 * `prlimit` exec, so `/proc/<pid>` describes the measured process itself.
 */
export class Proc {
  readonly name: string;
  readonly pid: number;
  readonly status: Promise<Deno.CommandStatus>;
  #child: Deno.ChildProcess;
  #stdout: Promise<string>;
  #stderr: Promise<string>;
  #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #isExited = false;

  constructor(name: string, command: string, args: readonly string[], options: SpawnOptions) {
    const prefix: string[] = [];
    if (options.cpus !== undefined) prefix.push("taskset", "-c", options.cpus);
    if (options.nofile !== undefined) {
      prefix.push("prlimit", `--nofile=${options.nofile}:${options.nofile}`, "--");
    }
    const argv = [...prefix, command, ...args];
    this.name = name;
    this.#child = new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      cwd: options.cwd,
      env: options.env,
      stdin: options.pipeStdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
    this.pid = this.#child.pid;
    this.#stdout = drain(this.#child.stdout, options.captureStdout ?? false);
    this.#stderr = drain(this.#child.stderr, true);
    if (options.pipeStdin) this.#stdin = this.#child.stdin.getWriter();
    this.status = this.#child.status.then((s) => {
      this.#isExited = true;
      live.delete(this);
      return s;
    });
    live.add(this);
  }

  /** True once the process has exited. */
  get isExited(): boolean {
    return this.#isExited;
  }

  /** Everything the process wrote to stdout, once it has exited. */
  async output(): Promise<string> {
    await this.status;
    return await this.#stdout;
  }

  /** The last lines of stderr, for error messages. */
  async stderrTail(lines = 20): Promise<string> {
    const text = await Promise.race([this.#stderr, delay(500).then(() => "")]);
    return text.split("\n").slice(-lines).join("\n");
  }

  /** Closes the stdin pipe (helpers take that as "stop"). */
  async closeStdin(): Promise<void> {
    try {
      await this.#stdin?.close();
    } catch {
      // already gone
    }
    this.#stdin = undefined;
  }

  /** Kills the whole process group; SIGKILL after `graceMs`. Resolves when it is gone. */
  async kill(graceMs = 2000): Promise<void> {
    if (this.#isExited) return;
    signalGroup(this.pid, "SIGTERM");
    const exited = await Promise.race([this.status.then(() => true), delay(graceMs)]);
    if (!exited) {
      signalGroup(this.pid, "SIGKILL");
      await Promise.race([this.status, delay(graceMs)]);
    }
    // Members of the group that outlived the leader (nginx workers) go too.
    signalGroup(this.pid, "SIGKILL");
    await this.closeStdin();
  }
}

function signalGroup(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch {
    // the group is gone
  }
}

async function drain(stream: ReadableStream<Uint8Array>, keep: boolean): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  try {
    for await (const chunk of stream) {
      if (keep) text += decoder.decode(chunk, { stream: true });
    }
  } catch {
    // the pipe broke when the process was killed
  }
  return text;
}

/** Starts a tracked child process. */
export function spawn(
  name: string,
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Proc {
  return new Proc(name, command, args, options);
}

/**
 * Runs a command to completion with a time bound and returns its stdout. Throws when it
 * exits non-zero or runs longer than `timeoutMs` (it is killed then).
 */
export async function run(
  name: string,
  command: string,
  args: readonly string[],
  options: SpawnOptions & {
    readonly timeoutMs: number;
    /** Return stdout even on a non-zero exit. @default {false} */
    readonly acceptFailure?: boolean;
  },
): Promise<string> {
  const proc = spawn(name, command, args, { ...options, captureStdout: true });
  const finished = await Promise.race([
    proc.status.then(() => true),
    delay(options.timeoutMs).then(() => false),
  ]);
  if (!finished) {
    await proc.kill(500);
    throw new Error(`Cannot finish ${name}: timed out after ${options.timeoutMs}ms`);
  }
  const status = await proc.status;
  const stdout = await proc.output();
  if (!status.success && !options.acceptFailure) {
    throw new Error(
      `Cannot finish ${name}: exit code ${status.code}: ${(await proc.stderrTail(5)).trim()}`,
    );
  }
  return stdout;
}

/** Kills every process started by {@linkcode spawn} that is still running. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill(1000)));
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A free TCP port on 127.0.0.1 (bound and released; fine for a benchmark). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Waits until something accepts TCP connections on `port`, or throws after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, proc?: Proc): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (proc?.isExited) {
      throw new Error(`Cannot start ${proc.name}: it exited: ${(await proc.stderrTail()).trim()}`);
    }
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      await delay(50);
    }
  }
  const detail = proc === undefined ? "" : `: ${(await proc.stderrTail()).trim()}`;
  throw new Error(`Cannot reach port ${port}: nothing listens after ${timeoutMs}ms${detail}`);
}

/** CPU time (user + system) of a process in seconds, from `/proc/<pid>/stat`. */
export function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / CLOCK_TICKS;
}

/** `sysconf(_SC_CLK_TCK)`; 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

/** Resident set size of a process in KiB (`VmRSS`). */
export function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (match === null) throw new Error(`Cannot read VmRSS of process ${pid}: no such line`);
  return Number(match[1]);
}

/**
 * The hard `RLIMIT_NOFILE` of this process (children may raise their soft limit up to it,
 * not beyond without `CAP_SYS_RESOURCE`). 65536 when it cannot be read.
 */
export function hardNofile(): number {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const hard = /^Max open files\s+\S+\s+(\S+)/m.exec(limits)?.[1];
    if (hard === undefined) return 65536;
    return hard === "unlimited" ? 1_048_576 : Number(hard);
  } catch {
    return 65536;
  }
}

/** fd limit given to children: as high as allowed, at most 65536. */
export const CHILD_NOFILE: number = Math.min(65536, hardNofile());

/** Open file descriptors of a process. */
export function fdCount(pid: number): number {
  let n = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) n++;
  return n;
}
