/**
 * NautilusLB instances of the high-availability suite: `serve` in an instance namespace
 * (through the reliability harness), with a supervisor that writes the keepalived track
 * file as the systemd drop-in in `deploy/keepalived/` does; keepalived and BIRD rendered
 * from the `deploy/` templates; the suite's client; and the figures (p50, max).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { BackendProcess, ServeProcess } from "../reliability/_harness.ts";
import { delay } from "../_helpers.ts";
import {
  BACKEND_ADDRESS,
  CLIENT_SOURCES,
  ECMP_VIP,
  INSTANCE_ADDRESS,
  type InstanceName,
  type Lab,
  renderTemplate,
  REPO_ROOT,
  type Role,
  ROUTER_ADDRESS,
  VRRP_VIP,
} from "./_lab.ts";
import type { Attempt } from "./_client.ts";

export type { Attempt };

/** The listener port on every instance (inside private namespaces, so fixed). */
export const LISTEN_PORT = 28080;
/** The admin port on every instance. */
export const ADMIN_PORT = 29090;
/** Runs per scenario: five, as the issue asks (`NAUTILUS_HA_RUNS` overrides it). */
export const RUNS = Number(Deno.env.get("NAUTILUS_HA_RUNS") ?? 5);
/** The client's cadence: one new connection every 20 ms. */
export const PROBE_INTERVAL_MS = 20;
/** Longer than one SYN retransmit (1 s), so a connect that needed one still counts as slow, not failed. */
export const CONNECT_TIMEOUT_MS = 3_000;

const CLIENT_SCRIPT = fileURLToPath(new URL("./_client.ts", import.meta.url));

/** Starts the echo backends `be1`..`be{count}` in the backend namespace. */
export function startBackends(lab: Lab, count: number): Promise<BackendProcess[]> {
  return Promise.all(
    Array.from(
      { length: count },
      (_, i) =>
        BackendProcess.start(`be${i + 1}`, BACKEND_ADDRESS, 28_001 + i, lab.prefix("backends")),
    ),
  );
}

/** A serve config for an instance: Maglev with one seed, so both pick the same backend. */
export function serveConfig(backends: readonly string[], shutdownDelay: string): string {
  return [
    "settings:",
    "  logLevel: warning",
    // Inside the instance namespace: keepalived, the BGP health script and the host read it.
    `  adminAddress: "0.0.0.0:${ADMIN_PORT}"`,
    `  shutdownDelay: ${shutdownDelay}`,
    "configurations:",
    "  - name: web",
    `    listenerAddress: ":${LISTEN_PORT}"`,
    "    balancer: maglev",
    "    maglev:",
    "      seed: 2026",
    "    drainTimeout: 2s",
    "    healthCheck:",
    "      interval: 1s",
    `    backends: [${backends.map((b) => `"${b}"`).join(", ")}]`,
    "",
  ].join("\n");
}

/** A child process whose output (stdout and stderr) goes to `logPath`. */
export class Daemon {
  readonly child: Deno.ChildProcess;
  readonly status: Promise<Deno.CommandStatus>;
  readonly logPath: string;
  #hasExited = false;

  constructor(argv: readonly string[], logPath: string) {
    this.logPath = logPath;
    this.child = new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const file = Deno.openSync(logPath, { write: true, create: true, append: true });
    file.writeSync(
      new TextEncoder().encode(
        `--- ${new Date().toISOString()} started pid ${this.child.pid}: ${argv.join(" ")}\n`,
      ),
    );
    const sink = file.writable.getWriter();
    const copy = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) await sink.write(chunk);
    };
    const copied = Promise.all([copy(this.child.stdout), copy(this.child.stderr)])
      .catch(() => {})
      .finally(() => sink.close().catch(() => {}));
    this.status = Promise.all([this.child.status, copied]).then(([status]) => status)
      .finally(() => this.#hasExited = true);
  }

  /** The log so far, for failure messages. */
  log(): string {
    try {
      return Deno.readTextFileSync(this.logPath);
    } catch {
      return "";
    }
  }

  get hasExited(): boolean {
    return this.#hasExited;
  }

  /** Sends `signal` unless it exited, and waits for the exit. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<void> {
    if (!this.#hasExited) {
      try {
        this.child.kill(signal);
      } catch {
        // exited meanwhile
      }
    }
    await this.status;
  }
}

/** One NautilusLB instance: its serve process and what the supervisor does around it. */
export class Instance {
  readonly name: InstanceName;
  readonly dir: string;
  readonly trackFile: string;
  serve: ServeProcess | undefined;
  readonly #lab: Lab;
  readonly #config: string;

  constructor(lab: Lab, name: InstanceName, dir: string, config: string) {
    this.#lab = lab;
    this.name = name;
    this.dir = dir;
    this.trackFile = `${dir}/vrrp-track`;
    this.#config = config;
  }

  get address(): string {
    return INSTANCE_ADDRESS[this.name];
  }

  /**
   * Starts serve and waits until `/readyz` answers 200; as systemd with the drop-in does,
   * the track file says 1 before the start, 0 once started and 1 again when serve exits.
   */
  async start(): Promise<void> {
    await Deno.writeTextFile(this.trackFile, "1\n");
    const serve = await ServeProcess.start(this.#config, ADMIN_PORT, {
      prefix: this.#lab.prefix(this.name),
      adminHostname: this.address,
    });
    this.serve = serve;
    await Deno.writeTextFile(this.trackFile, "0\n");
    void serve.status.then(() => Deno.writeTextFile(this.trackFile, "1\n"));
  }

  /** Sends `signal` to serve and waits for its exit (and the track file). */
  async kill(signal: Deno.Signal): Promise<void> {
    this.serve?.kill(signal);
    await this.exited();
  }

  /** Waits until serve has exited (after a signal sent through `serve`). */
  async exited(): Promise<void> {
    const serve = this.serve;
    if (serve === undefined) return;
    await serve.status;
    this.serve = undefined;
    await delay(10);
    await serve.stop();
  }

  /** Stops serve if it runs. */
  async stop(): Promise<void> {
    await this.serve?.stop();
    this.serve = undefined;
  }
}

/** keepalived for one instance, from `deploy/keepalived/keepalived.conf.tmpl`. */
export class Keepalived {
  readonly instance: Instance;
  readonly notifyLog: string;
  daemon: Daemon | undefined;
  readonly #lab: Lab;

  constructor(lab: Lab, instance: Instance) {
    this.#lab = lab;
    this.instance = instance;
    this.notifyLog = `${instance.dir}/notify.log`;
  }

  #starts = 0;

  #vrrpPidFile(): string {
    return `${this.instance.dir}/keepalived_vrrp-${this.#starts}.pid`;
  }

  /** Renders the config with the suite's values and starts keepalived in the namespace. */
  async start(): Promise<void> {
    this.#starts++;
    const { dir, name } = this.instance;
    const peer = name === "a" ? INSTANCE_ADDRESS.b : INSTANCE_ADDRESS.a;
    const config = await renderFile(
      "deploy/keepalived/keepalived.conf.tmpl",
      `${dir}/keepalived.conf`,
      {
        NLB_ROUTER_ID: `nlb-${name}`,
        NLB_INTERFACE: "eth0",
        NLB_SELF: INSTANCE_ADDRESS[name],
        NLB_PEER: peer,
        NLB_VIP: `${VRRP_VIP}/24`,
        NLB_VRID: "51",
        NLB_ADMIN: `127.0.0.1:${ADMIN_PORT}`,
        NLB_ADVERT_INT: "0.1",
        NLB_CHECK_INTERVAL: "1",
        NLB_CHECK_FALL: "2",
        NLB_CHECK_RISE: "2",
        NLB_TRACK_FILE: this.instance.trackFile,
        NLB_SCRIPT_USER: "root",
        NLB_NOTIFY: `${REPO_ROOT}deploy/keepalived/nautiluslb-notify.sh ${this.notifyLog}`,
      },
    );
    this.daemon = new Daemon([
      ...this.#lab.prefix(name),
      // keepalived writes its console log through stdio: line-buffered, the log is current.
      "stdbuf",
      "-oL",
      "-eL",
      "keepalived",
      "--dont-fork",
      "--vrrp",
      "--log-detail",
      "--log-console",
      `--use-file=${config}`,
      // Fresh pid files for every start: the VRRP process of a keepalived killed outright is
      // a zombie until init reaps it, and keepalived's start-up check can hang on its file.
      `--pid=${dir}/keepalived-${this.#starts}.pid`,
      `--vrrp_pid=${this.#vrrpPidFile()}`,
    ], `${dir}/keepalived.log`);
  }

  /** The last state keepalived reported through the notify script, if any. */
  async state(): Promise<string | undefined> {
    const text = await Deno.readTextFile(this.notifyLog).catch(() => "");
    const last = text.trim().split("\n").at(-1) ?? "";
    return last.split(" ")[3];
  }

  /**
   * Kills keepalived outright, as a crash would: the VRRP process first, then the parent
   * (killed alone, the parent would make the VRRP process stop cleanly, sending priority 0).
   */
  async kill(): Promise<void> {
    const daemon = this.daemon;
    if (daemon === undefined) return;
    const vrrp = (await Deno.readTextFile(this.#vrrpPidFile())).trim();
    await run(["kill", "-KILL", vrrp, String(daemon.child.pid)]);
    await daemon.status;
    this.daemon = undefined;
  }

  async stop(): Promise<void> {
    await this.daemon?.stop("SIGTERM");
    this.daemon = undefined;
  }
}

async function run(args: readonly string[]): Promise<void> {
  const { code } = await new Deno.Command(args[0]!, { args: args.slice(1) }).output();
  if (code !== 0) throw new Error(`Command failed with exit code ${code}: ${args.join(" ")}`);
}

/** Renders a `deploy/` template to `path` and returns `path`. */
async function renderFile(
  template: string,
  path: string,
  values: Readonly<Record<string, string>>,
): Promise<string> {
  await Deno.writeTextFile(path, await renderTemplate(template, values));
  return path;
}

/** BIRD in `role`'s namespace with a rendered `deploy/bgp/` config; `birdc` argv prefix. */
export class Bird {
  readonly daemon: Daemon;
  readonly birdc: readonly string[];

  private constructor(daemon: Daemon, birdc: readonly string[]) {
    this.daemon = daemon;
    this.birdc = birdc;
  }

  static async start(
    lab: Lab,
    role: Role,
    dir: string,
    template: string,
    values: Readonly<Record<string, string>>,
  ): Promise<Bird> {
    const config = await renderFile(template, `${dir}/bird-${role}.conf`, values);
    const socket = `${dir}/bird-${role}.ctl`;
    const daemon = new Daemon(
      [...lab.prefix(role), "bird", "-f", "-c", config, "-s", socket],
      `${dir}/bird-${role}.log`,
    );
    return new Bird(daemon, [...lab.prefix(role), "birdc", "-s", socket]);
  }

  stop(): Promise<void> {
    return this.daemon.stop("SIGTERM");
  }
}

/** Values of `deploy/bgp/bird-instance.conf.tmpl` for instance `name`. */
export function birdInstanceValues(name: InstanceName): Record<string, string> {
  return {
    NLB_SELF: INSTANCE_ADDRESS[name],
    NLB_LOCAL_AS: "65001",
    NLB_ROUTER: ROUTER_ADDRESS,
    NLB_ROUTER_AS: "65000",
    NLB_VIP: ECMP_VIP,
  };
}

/** Values of `deploy/bgp/bird-router.conf.tmpl`. */
export const BIRD_ROUTER_VALUES: Readonly<Record<string, string>> = {
  NLB_ROUTER: ROUTER_ADDRESS,
  NLB_ROUTER_AS: "65000",
  NLB_LOCAL_AS: "65001",
  NLB_PEER_A: INSTANCE_ADDRESS.a,
  NLB_PEER_B: INSTANCE_ADDRESS.b,
  NLB_VIP: ECMP_VIP,
};

/** A running `_client.ts probe`: one connection every 20 ms until {@linkcode Probe.stop}. */
export class Probe {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: Lines;

  /** Probes `host` from the client's own address, or from each of `sources` in turn. */
  constructor(lab: Lab, host: string, sources: readonly string[] = []) {
    this.#child = clientCommand(lab, [
      "probe",
      host,
      String(LISTEN_PORT),
      String(PROBE_INTERVAL_MS),
      String(CONNECT_TIMEOUT_MS),
      ...sources,
    ]);
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = new Lines(this.#child.stdout);
  }

  /** Waits until the client's first connection ended (Deno's start-up takes a while). */
  async warmUp(): Promise<void> {
    await this.#lines.next();
  }

  /** Stops opening connections, waits for those in flight, returns every attempt. */
  async stop(): Promise<Attempt[]> {
    await this.#writer.close();
    const attempts = (JSON.parse(await this.#lines.next()) as { attempts: Attempt[] }).attempts;
    await this.#lines.close();
    await this.#child.status;
    return attempts;
  }
}

function clientCommand(lab: Lab, args: readonly string[]): Deno.ChildProcess {
  const argv = [
    ...lab.prefix("client"),
    Deno.execPath(),
    "run",
    "--allow-net",
    CLIENT_SCRIPT,
    ...args,
  ];
  return new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/** Lines of a child's stdout, one at a time. */
class Lines {
  readonly #reader: ReadableStreamDefaultReader<string>;
  #pending = "";

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  async next(): Promise<string> {
    while (!this.#pending.includes("\n")) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error("The client exited early");
      this.#pending += value;
    }
    const index = this.#pending.indexOf("\n");
    const line = this.#pending.slice(0, index);
    this.#pending = this.#pending.slice(index + 1);
    return line;
  }

  async close(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/** Runs `_client.ts` in the client namespace with `args` and returns its JSON output. */
export async function clientOnce<T>(lab: Lab, args: readonly string[]): Promise<T> {
  const { code, stdout, stderr } = await new Deno.Command(lab.prefix("client")[0]!, {
    args: [
      ...lab.prefix("client").slice(1),
      Deno.execPath(),
      "run",
      "--allow-net",
      CLIENT_SCRIPT,
      ...args,
    ],
  }).output();
  const decoder = new TextDecoder();
  if (code !== 0) {
    throw new Error(`Client failed with exit code ${code}: ${decoder.decode(stderr)}`);
  }
  return JSON.parse(decoder.decode(stdout)) as T;
}

/** A running `_client.ts hold`: one long-lived connection per source address. */
export class Holder {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: Lines;

  constructor(lab: Lab, host: string, sources: readonly string[] = CLIENT_SOURCES) {
    this.#child = clientCommand(lab, [
      "hold",
      host,
      String(LISTEN_PORT),
      String(CONNECT_TIMEOUT_MS),
      ...sources,
    ]);
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = new Lines(this.#child.stdout);
  }

  /** The connections as opened. */
  async opened(): Promise<Attempt[]> {
    return (JSON.parse(await this.#lines.next()) as { opened: Attempt[] }).opened;
  }

  /** Writes and reads 16 bytes on every open connection. */
  async check(): Promise<Attempt[]> {
    await this.#writer.write(new TextEncoder().encode("check\n"));
    return (JSON.parse(await this.#lines.next()) as { checked: Attempt[] }).checked;
  }

  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.#lines.close();
    await this.#child.status;
  }
}

/** What one run saw: failed connections and the window from the first to the last. */
export interface Outage {
  readonly attempts: number;
  readonly failed: number;
  readonly refused: number;
  /** Milliseconds from the start of the first failed connection to that of the last. */
  readonly windowMs: number;
  /** Failures by error code. */
  readonly errors: Readonly<Record<string, number>>;
  /** Connections that succeeded but took over 500 ms (a SYN retransmitted after 1 s). */
  readonly slow: number;
  /** As `windowMs`, over failed and slow connections: the stall a client sees. */
  readonly stallWindowMs: number;
  /** The first failed or slow connections: start relative to the fault, duration, error. */
  readonly disrupted: readonly string[];
}

/** Connections slower than this count as stalled. */
const SLOW_MS = 500;

/** Summarises a probe's attempts; `faultAt` (epoch ms) is when the fault was injected. */
export function outageOf(attempts: readonly Attempt[], faultAt: number): Outage {
  const failed = attempts.filter((a) => !a.ok);
  const stalled = attempts.filter((a) => !a.ok || a.ms > SLOW_MS);
  const errors: Record<string, number> = {};
  for (const a of failed) errors[a.error ?? "?"] = (errors[a.error ?? "?"] ?? 0) + 1;
  const span = (list: readonly Attempt[]) =>
    list.length === 0 ? 0 : Math.max(...list.map((a) => a.t)) - Math.min(...list.map((a) => a.t));
  return {
    attempts: attempts.length,
    failed: failed.length,
    refused: errors["ECONNREFUSED"] ?? 0,
    windowMs: span(failed),
    errors,
    slow: stalled.length - failed.length,
    stallWindowMs: span(stalled),
    disrupted: stalled.slice(0, 6).map((a) =>
      `${a.t - faultAt}ms+${a.ms}ms:${a.ok ? "slow" : a.error}`
    ),
  };
}

/** p50 (lower median) and max of `values`. */
export function p50Max(values: readonly number[]): { p50: number; max: number } {
  const sorted = [...values].sort((x, y) => x - y);
  return { p50: sorted[Math.floor((sorted.length - 1) / 2)] ?? 0, max: sorted.at(-1) ?? 0 };
}
