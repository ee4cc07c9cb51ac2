/**
 * Black-box harness for the reliability suite: runs the real CLI (`serve`) with exactly the
 * permissions the README documents, backends as separate processes (so they can be killed or
 * run inside a network namespace), and reads the admin endpoints and `/proc` of the serve
 * process. Nothing here imports `src/`: the suite tests only what a user can see.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { GREETING_BYTES } from "./_backend.ts";
import {
  closeQuietly,
  delay,
  freePort,
  readExactly,
  sha256Hex,
  withTimeout,
  writeAll,
} from "../_helpers.ts";

export { GREETING_BYTES };
export { waitUntil } from "../_helpers.ts";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BACKEND_SCRIPT = fileURLToPath(new URL("./_backend.ts", import.meta.url));
/** Start-up includes loading npm modules on a busy machine; generous, but bounded. */
export const READY_MS = 30_000;
const decoder = new TextDecoder();
/** `settings.workers` for every serve the suite starts, when set; the default otherwise. */
const TEST_WORKERS = Deno.env.get("NAUTILUSLB_TEST_WORKERS");

/** Drains a byte stream into a string, so a child never blocks on a full pipe. */
function collect(stream: ReadableStream<Uint8Array>): { text: () => string; done: Promise<void> } {
  let text = "";
  const done = stream.pipeTo(
    new WritableStream({
      write: (chunk) => void (text += decoder.decode(chunk, { stream: true })),
    }),
  ).catch(() => {});
  return { text: () => text, done };
}

/** How {@linkcode ServeProcess.start} runs `serve`. */
export interface ServeOptions {
  /** `deno run` flags before `src/main.ts`, e.g. `--v8-flags=…`. */
  readonly runtimeArgs?: readonly string[];
  /** `ulimit -n` (hard and soft) to run it under. */
  readonly openFilesLimit?: number;
  /** Runs serve under this prefix, e.g. a network namespace's `ip netns exec NS`. */
  readonly prefix?: readonly string[];
  /** Where this process reaches the admin port. @default {"127.0.0.1"} */
  readonly adminHostname?: string;
}

/** A running `serve` process. */
export class ServeProcess {
  readonly child: Deno.ChildProcess;
  readonly adminPort: number;
  readonly dir: string;
  /** Where this process reaches the admin port. */
  readonly adminHostname: string;
  /** Settles with the exit status once the process has exited. */
  readonly status: Promise<Deno.CommandStatus>;
  #stdout: ReturnType<typeof collect>;
  #stderr: ReturnType<typeof collect>;
  #hasExited = false;

  private constructor(
    child: Deno.ChildProcess,
    adminPort: number,
    dir: string,
    adminHostname: string,
  ) {
    this.child = child;
    this.adminPort = adminPort;
    this.dir = dir;
    this.adminHostname = adminHostname;
    this.#stdout = collect(child.stdout);
    this.#stderr = collect(child.stderr);
    this.status = child.status.finally(() => this.#hasExited = true);
  }

  /**
   * Writes `configYaml` to a temporary directory and runs
   * `deno run --unstable-net --allow-net --allow-read --allow-env src/main.ts serve -c <file>`,
   * then waits until `/readyz` answers 200. The config must set `settings.adminAddress` to
   * `127.0.0.1:<adminPort>`. `options.runtimeArgs` go before `src/main.ts`, e.g.
   * `--inspect=127.0.0.1:9229` to read the heap from outside; `options.openFilesLimit` runs it
   * under that `ulimit -n` (hard and soft). With `options.prefix` (which must `exec`, as
   * `ip netns exec` does, so `pid` stays serve's own) the admin port is reached on
   * `options.adminHostname`.
   */
  static async start(
    configYaml: string,
    adminPort: number,
    options: ServeOptions = {},
  ): Promise<ServeProcess> {
    const dir = await Deno.makeTempDir({ prefix: "nautiluslb_reliability_" });
    const configPath = `${dir}/config.yaml`;
    await Deno.writeTextFile(configPath, configYaml);
    const argv = [
      Deno.execPath(),
      "run",
      "--unstable-net",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      ...(options.runtimeArgs ?? []),
      "src/main.ts",
      "serve",
      "-c",
      configPath,
    ];
    if (options.openFilesLimit !== undefined) {
      // `exec` keeps the pid, so `pid` is serve's own.
      argv.unshift("bash", "-c", `ulimit -n ${options.openFilesLimit} && exec "$@"`, "bash");
    }
    argv.unshift(...(options.prefix ?? []));
    const child = new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const serve = new ServeProcess(child, adminPort, dir, options.adminHostname ?? "127.0.0.1");
    try {
      await serve.#waitReady();
    } catch (error) {
      await serve.stop();
      throw error;
    }
    return serve;
  }

  get pid(): number {
    return this.child.pid;
  }

  get hasExited(): boolean {
    return this.#hasExited;
  }

  /** What the process printed so far (stdout then stderr), for failure messages. */
  get output(): string {
    return `${this.#stdout.text()}${this.#stderr.text()}`;
  }

  async #waitReady(): Promise<void> {
    const deadline = performance.now() + READY_MS;
    while (performance.now() < deadline) {
      if (this.#hasExited) {
        const { code } = await this.status;
        await Promise.all([this.#stdout.done, this.#stderr.done]);
        throw new Error(`serve exited with code ${code} before it was ready:\n${this.output}`);
      }
      const status = await this.adminStatus("/readyz").catch(() => 0);
      if (status === 200) return;
      await delay(100);
    }
    throw new Error(`serve was not ready within ${READY_MS}ms:\n${this.output}`);
  }

  /** GETs an admin path and returns the body; throws on a non-2xx status. */
  async admin(path: string): Promise<string> {
    const response = await fetch(`http://${this.adminHostname}:${this.adminPort}${path}`, {
      signal: AbortSignal.timeout(5_000),
    });
    const body = await response.text();
    if (!response.ok) throw new Error(`GET ${path} answered ${response.status}: ${body}`);
    return body;
  }

  /** GETs an admin path and returns only the status code. */
  async adminStatus(path: string): Promise<number> {
    const response = await fetch(`http://${this.adminHostname}:${this.adminPort}${path}`, {
      signal: AbortSignal.timeout(5_000),
    });
    await response.body?.cancel();
    return response.status;
  }

  /** The backends of `pool` as `/pools` shows them. */
  async backends(pool: string): Promise<PoolBackend[]> {
    const { pools } = JSON.parse(await this.admin("/pools")) as {
      pools: { name: string; backends: PoolBackend[] }[];
    };
    const found = pools.find((p) => p.name === pool);
    if (!found) throw new Error(`No pool named ${pool} on /pools`);
    return found.backends;
  }

  /** The health `/pools` shows for backend `key` of `pool`. */
  async health(pool: string, key: string): Promise<string | undefined> {
    return (await this.backends(pool)).find((b) => b.key === key)?.health;
  }

  /** Sum of the samples of `name` on `/metrics` whose labels contain every `labels` pair. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = await this.admin("/metrics");
    let sum = 0;
    for (const line of text.split("\n")) {
      if (!line.startsWith(name) || (line[name.length] !== "{" && line[name.length] !== " ")) {
        continue;
      }
      const isMatch = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
      if (isMatch) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
    return sum;
  }

  /** Open file descriptors of the serve process. */
  fdCount(): number {
    return fdCount(this.pid);
  }

  /** Resident set size of the serve process in KiB. */
  rssKiB(): number {
    return rssKiB(this.pid);
  }

  /** Sends a signal; ignores a process that has already exited. */
  kill(signal: Deno.Signal): void {
    try {
      this.child.kill(signal);
    } catch {
      // exited meanwhile
    }
  }

  /** Kills the process if it still runs, waits for it and removes the config directory. */
  async stop(): Promise<void> {
    if (!this.#hasExited) this.kill("SIGKILL");
    await this.status.catch(() => {});
    await Promise.all([this.#stdout.done, this.#stderr.done]);
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** One backend row of `/pools`. */
export interface PoolBackend {
  readonly key: string;
  readonly health: string;
  readonly activeConnections: number;
  readonly isDraining: boolean;
}

/**
 * Reads a file of another process under `/proc` through `cat`: Deno asks for full access
 * to read `/proc/<pid>/...` directly, and the test task grants only `--allow-run` and
 * `--allow-read`.
 */
function readProc(args: readonly string[]): string {
  const { code, stdout, stderr } = new Deno.Command(args[0]!, { args: args.slice(1) })
    .outputSync();
  const decoder = new TextDecoder();
  if (code !== 0) throw new Error(`Cannot read ${args.at(-1)}: ${decoder.decode(stderr).trim()}`);
  return decoder.decode(stdout);
}

/** Open file descriptors of process `pid`. */
export function fdCount(pid: number): number {
  return readProc(["ls", "-1", `/proc/${pid}/fd`]).split("\n").filter((l) => l !== "").length;
}

/** `VmRSS` of process `pid` in KiB. */
export function rssKiB(pid: number): number {
  const status = readProc(["cat", `/proc/${pid}/status`]);
  const match = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!match) throw new Error(`No VmRSS in /proc/${pid}/status`);
  return Number(match[1]);
}

/** A {@linkcode _backend.ts} process: greets with its name, then echoes. */
export class BackendProcess {
  readonly name: string;
  readonly hostname: string;
  readonly port: number;
  readonly child: Deno.ChildProcess;
  readonly status: Promise<Deno.CommandStatus>;

  private constructor(
    name: string,
    hostname: string,
    port: number,
    child: Deno.ChildProcess,
  ) {
    this.name = name;
    this.hostname = hostname;
    this.port = port;
    this.child = child;
    this.status = child.status;
  }

  /**
   * Starts a backend on `hostname:port` (port 0 picks one), inside a namespace when
   * `prefix` is a {@linkcode NetNs.execPrefix}, and waits until it listens.
   */
  static async start(
    name: string,
    hostname = "127.0.0.1",
    port = 0,
    prefix: readonly string[] = [],
  ): Promise<BackendProcess> {
    const argv = [
      ...prefix,
      Deno.execPath(),
      "run",
      "--allow-net",
      BACKEND_SCRIPT,
      hostname,
      String(port),
      name,
    ];
    const child = new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const err = collect(child.stderr);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let line = "";
    try {
      line = await withTimeout(
        (async () => {
          let text = "";
          while (!text.includes("\n")) {
            const { value, done } = await reader.read();
            if (done) throw new Error(`backend ${name} exited: ${err.text()}`);
            text += value;
          }
          return text;
        })(),
        READY_MS,
        `backend ${name} to listen`,
      );
    } catch (error) {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited
      }
      await child.status;
      throw error;
    }
    // Keep draining stdout so the child never blocks.
    void (async () => {
      try {
        while (!(await reader.read()).done) {
          // discard
        }
      } catch {
        // closed
      }
    })();
    const bound = Number(line.match(/ready (\d+)/)?.[1]);
    return new BackendProcess(name, hostname, bound, child);
  }

  /** `host:port`, as the config and `/pools` spell it. */
  get key(): string {
    return `${this.hostname}:${this.port}`;
  }

  /** Sends `signal` (SIGKILL by default) and waits for the exit. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    try {
      this.child.kill(signal);
    } catch {
      // exited already
    }
    await this.status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}

/** Result of one {@linkcode echoTransfer}. */
export interface TransferResult {
  /** Greeting of the backend the connection landed on, trimmed. */
  readonly backend: string;
  readonly sentSha: string;
  readonly receivedSha: string;
  readonly bytes: number;
}

/** Options of {@linkcode echoTransfer}. */
export interface EchoTransferOptions {
  /** Bytes per write. @default {65536} */
  readonly chunkBytes?: number;
  /** Pause after each write, to stretch a transfer over time. @default {0} */
  readonly pauseMs?: number;
  /** Called with the backend name once the greeting arrived. */
  readonly onGreeting?: (backend: string) => void;
}

/**
 * Through an echo backend: reads the greeting, sends `payload` (then half-closes), reads
 * the echo to EOF, and returns both checksums. Closes `conn`. Throws when the connection
 * breaks or ends early.
 */
export async function echoTransfer(
  conn: Deno.TcpConn,
  payload: Uint8Array,
  options: EchoTransferOptions = {},
): Promise<TransferResult> {
  const chunkBytes = options.chunkBytes ?? 65_536;
  try {
    const backend = decoder.decode(await readExactly(conn, GREETING_BYTES)).trim();
    options.onGreeting?.(backend);
    const writing = (async () => {
      for (let offset = 0; offset < payload.length; offset += chunkBytes) {
        await writeAll(
          conn,
          payload.subarray(offset, Math.min(payload.length, offset + chunkBytes)),
        );
        if (options.pauseMs) await delay(options.pauseMs);
      }
      await conn.closeWrite();
    })();
    // A broken connection also fails the writer; the reader reports it.
    writing.catch(() => {});
    const received = new Uint8Array(payload.length);
    let offset = 0;
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      if (offset + n > received.length) throw new Error("Received more bytes than were sent");
      received.set(buffer.subarray(0, n), offset);
      offset += n;
    }
    await writing;
    if (offset !== payload.length) {
      throw new Error(`Echo ended early: ${offset} of ${payload.length} bytes`);
    }
    return {
      backend,
      sentSha: await sha256Hex(payload),
      receivedSha: await sha256Hex(received),
      bytes: offset,
    };
  } finally {
    closeQuietly(conn);
  }
}

/** Prints one measured figure in a grep-able form. */
export function report(label: string, figures: Record<string, unknown>): void {
  console.log(`[measure] ${label}: ${JSON.stringify(figures)}`);
}

/** One listener of {@linkcode configYaml}: extra keys are written verbatim (`key: value`). */
export interface ListenerSpec {
  readonly name: string;
  readonly port: number;
  readonly backends: readonly string[];
  readonly extra?: Readonly<Record<string, string | number>>;
  /** `healthCheck:` keys. */
  readonly healthCheck?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * A serve config with the admin server on `127.0.0.1:adminPort` and the given listeners.
 * `settings` keys are written verbatim under `settings:` (`key: value`), e.g. a quoted
 * `kubeconfigPath`.
 */
export function configYaml(
  adminPort: number,
  listeners: readonly ListenerSpec[],
  settings: Readonly<Record<string, string | number>> = {},
): string {
  const lines = [
    "settings:",
    "  logLevel: warning",
    `  adminAddress: "127.0.0.1:${adminPort}"`,
    // The whole suite runs against a multi-worker data plane with NAUTILUSLB_TEST_WORKERS=2.
    ...(TEST_WORKERS === undefined || "workers" in settings ? [] : [`  workers: ${TEST_WORKERS}`]),
    ...Object.entries(settings).map(([key, value]) => `  ${key}: ${value}`),
    "configurations:",
  ];
  for (const l of listeners) {
    lines.push(`  - name: ${l.name}`);
    lines.push(`    listenerAddress: "127.0.0.1:${l.port}"`);
    for (const [key, value] of Object.entries(l.extra ?? {})) lines.push(`    ${key}: ${value}`);
    if (l.healthCheck) {
      lines.push("    healthCheck:");
      for (const [key, value] of Object.entries(l.healthCheck)) {
        lines.push(`      ${key}: ${value}`);
      }
    }
    lines.push(`    backends: [${l.backends.map((b) => `"${b}"`).join(", ")}]`);
  }
  return lines.join("\n") + "\n";
}

/** A {@linkcode ServeProcess} with one listener, as {@linkcode serveOneListener} starts it. */
export interface OneListenerServe extends AsyncDisposable {
  readonly serve: ServeProcess;
  /** Port of the listener on `127.0.0.1`. */
  readonly port: number;
}

/**
 * Starts serve with the one listener `listener`, it and the admin server on free ports of
 * `127.0.0.1`, and waits until it is ready. Disposing stops serve.
 */
export async function serveOneListener(
  listener: Omit<ListenerSpec, "port">,
  options: ServeOptions = {},
): Promise<OneListenerServe> {
  const adminPort = freePort();
  const port = freePort();
  const serve = await ServeProcess.start(
    configYaml(adminPort, [{ ...listener, port }]),
    adminPort,
    options,
  );
  return { serve, port, [Symbol.asyncDispose]: () => serve.stop() };
}

/** A {@linkcode OneListenerServe} in front of one {@linkcode BackendProcess}. */
export interface BackendBehindServe extends OneListenerServe {
  readonly backend: BackendProcess;
}

/**
 * Starts a backend process named `name` and serve with one listener, also named `name`, in
 * front of it; `extra` keys go under the listener as in {@linkcode ListenerSpec}. Disposing
 * stops serve, then the backend.
 */
export async function serveOneBackend(
  name: string,
  extra: ListenerSpec["extra"] = {},
  options: ServeOptions = {},
): Promise<BackendBehindServe> {
  const backend = await BackendProcess.start(name);
  try {
    const { serve, port } = await serveOneListener(
      { name, backends: [backend.key], extra },
      options,
    );
    return {
      backend,
      serve,
      port,
      async [Symbol.asyncDispose]() {
        await serve.stop();
        await backend.kill();
      },
    };
  } catch (error) {
    await backend.kill();
    throw error;
  }
}
