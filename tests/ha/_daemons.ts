/**
 * The daemons of the high-availability suite, rendered from the `deploy/` templates:
 * keepalived for the active/standby pair, BIRD for the active/active one.
 *
 * @module
 */
import {
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
import { ADMIN_PORT, type Instance } from "./_instances.ts";

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
