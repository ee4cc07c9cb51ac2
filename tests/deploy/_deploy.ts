/**
 * Shared pieces of the deployment tests: which tools and privileges a test needs (skipped
 * with a one-line notice when missing, failed instead when `NAUTILUS_DEPLOY_REQUIRED=1`, as
 * CI sets it), a config with static backends, a running process's `/metrics`, and what
 * systemd makes of a unit file (its settings, its commands' credentials, `systemd-analyze
 * verify`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

/** The repository's root directory, with a trailing slash. */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Set by CI: a missing tool or privilege fails the test instead of skipping it. */
export const IS_REQUIRED: boolean = Deno.env.get("NAUTILUS_DEPLOY_REQUIRED") === "1";

/** What a deployment test needs from the machine. */
export interface Needs {
  /** Commands that must be on PATH (or in /usr/sbin, /sbin). */
  readonly tools?: readonly string[];
  /** Runs as uid 0 (setpriv, setcap, network namespaces, podman). */
  readonly root?: boolean;
}

function hasTool(name: string): boolean {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin"]) {
    try {
      if (dir !== "" && Deno.statSync(`${dir}/${name}`).isFile) return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** What is missing for `needs`, or `undefined` when nothing is. */
export function missingFor(needs: Needs): string | undefined {
  const missing = (needs.tools ?? []).filter((t) => !hasTool(t));
  if (needs.root === true && Deno.uid() !== 0) missing.push("root");
  return missing.length === 0 ? undefined : missing.join(", ");
}

/**
 * Registers a test that runs only when `needs` are met. When they are not, it is skipped with
 * a one-line notice on stderr, or, with `NAUTILUS_DEPLOY_REQUIRED=1`, it fails saying what
 * is missing.
 */
export function deployTest(name: string, needs: Needs, fn: () => Promise<void>): void {
  const missing = missingFor(needs);
  if (missing !== undefined && !IS_REQUIRED) {
    console.error(`skipped: ${name}: needs ${missing} (NAUTILUS_DEPLOY_REQUIRED=1 makes it fail)`);
    Deno.test({ name, ignore: true, fn });
    return;
  }
  Deno.test(name, async () => {
    if (missing !== undefined) throw new Error(`Cannot run this test: missing ${missing}`);
    await fn();
  });
}

/** Runs a command to completion; throws with its output when it fails. */
export async function sh(
  cmd: string,
  args: readonly string[],
  options: { readonly env?: Record<string, string>; readonly cwd?: string } = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args: [...args],
    env: options.env,
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `Cannot run ${cmd} ${args.join(" ")}: exit ${out.code}: ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  return text;
}

/** Parses a Prometheus text exposition into `name{labels}` → value. */
export function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** Polls `probe` every 100 ms until it returns a value other than `undefined`, bounded by `ms`. */
export async function pollFor<T>(
  what: string,
  ms: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Timed out after ${ms} ms waiting for ${what}`, { cause: last });
}

/** Reads everything a TCP peer sends until it closes, with a deadline. */
export async function exchange(
  port: number,
  hostname = "127.0.0.1",
  ms = 5_000,
): Promise<string> {
  const conn = await Deno.connect({ hostname, port });
  try {
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(4096);
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      const text = new TextDecoder().decode(
        new Uint8Array(chunks.flatMap((c) => [...c])),
      );
      if (text.length > 0) return text;
    }
    return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  } finally {
    conn.close();
  }
}

/** Process credentials as the kernel holds them after `exec`: what a supervisor sets up. */
export interface Credentials {
  readonly uid: number;
  readonly gid: number;
  /** Capability names without `CAP_`, lower case (`net_bind_service`). */
  readonly bounding: readonly string[];
  readonly inheritable: readonly string[];
  readonly ambient: readonly string[];
  readonly noNewPrivs: boolean;
}

/** `setpriv` arguments that give the command exactly `c` (run as root). */
export function setprivArgs(c: Credentials): string[] {
  const set = (caps: readonly string[]) => ["-all", ...caps.map((x) => `+${x}`)].join(",");
  return [
    "setpriv",
    `--reuid=${c.uid}`,
    `--regid=${c.gid}`,
    "--clear-groups",
    `--bounding-set=${set(c.bounding)}`,
    `--inh-caps=${set(c.inheritable)}`,
    `--ambient-caps=${set(c.ambient)}`,
    ...(c.noNewPrivs ? ["--no-new-privs"] : []),
    "--",
  ];
}

/** A uid no account uses: what `DynamicUser=yes` allocates. */
export const DYNAMIC_UID = 61993;

/**
 * `[Service]` settings of a unit file or drop-in; repeated keys are kept in order. Knows no
 * line continuations.
 */
export function serviceSettings(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("[")) {
      section = line;
      continue;
    }
    if (section !== "[Service]") continue;
    const at = line.indexOf("=");
    const key = line.slice(0, at);
    settings.set(key, [...(settings.get(key) ?? []), line.slice(at + 1)]);
  }
  return settings;
}

/** The value of `key`, which must be set exactly once. */
export function one(settings: Map<string, string[]>, key: string): string {
  const values = settings.get(key);
  assert.ok(values?.length === 1, `${key} set once`);
  return values[0]!;
}

/**
 * The variables of every `Environment=` line, in order, specifiers left as written. Knows
 * unquoted `KEY=value` pairs only and fails on a quote.
 */
export function environmentOf(settings: Map<string, string[]>): Map<string, string> {
  const env = new Map<string, string>();
  for (const line of settings.get("Environment") ?? []) {
    assert.doesNotMatch(line, /["']/, "quoted Environment= values are not parsed here");
    for (const pair of line.split(/\s+/)) {
      const at = pair.indexOf("=");
      env.set(pair.slice(0, at), pair.slice(at + 1));
    }
  }
  return env;
}

function caps(value: string): string[] {
  return value.split(/\s+/).map((c) => c.replace(/^CAP_/, "").toLowerCase());
}

/**
 * The credentials systemd gives the commands of a `DynamicUser=yes` unit with these settings:
 * {@linkcode DYNAMIC_UID} as user and group, `CapabilityBoundingSet`, `AmbientCapabilities`
 * (raised through the inheritable set, as systemd does) and `NoNewPrivileges`.
 */
export function unitCredentials(settings: Map<string, string[]>): Credentials {
  assert.equal(one(settings, "DynamicUser"), "yes");
  return {
    uid: DYNAMIC_UID,
    gid: DYNAMIC_UID,
    bounding: caps(one(settings, "CapabilityBoundingSet")),
    inheritable: caps(one(settings, "AmbientCapabilities")),
    ambient: caps(one(settings, "AmbientCapabilities")),
    noNewPrivs: one(settings, "NoNewPrivileges") === "yes",
  };
}

/**
 * `systemd-analyze verify` of unit files: its exit code and everything it printed. The
 * directory of each file comes first in the unit search path, so units and drop-in
 * directories beside a file are found before the machine's.
 */
export async function verifyUnits(
  paths: readonly string[],
): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command("systemd-analyze", {
    args: ["verify", ...paths],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

/**
 * A named network namespace `dep-<suffix>` joined to this one by a veth pair on
 * 10.234.<octet>.0/24: this side is `.1`, the namespace `.2`. Stands for a host or a pod.
 */
export class Netns {
  readonly name: string;
  readonly hostIp: string;
  readonly nsIp: string;
  readonly #veth: string;

  private constructor(suffix: string, octet: number) {
    this.name = `dep-${suffix}`;
    this.#veth = `dep-${suffix}-h`;
    this.hostIp = `10.234.${octet}.1`;
    this.nsIp = `10.234.${octet}.2`;
  }

  /** Creates the namespace (replacing a leftover of an aborted run). */
  static async create(suffix: string, octet: number): Promise<Netns> {
    const ns = new Netns(suffix, octet);
    await ns.close();
    try {
      await sh("ip", ["netns", "add", ns.name]);
      await sh("ip", [
        "link",
        "add",
        ns.#veth,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ns.name,
      ]);
      await sh("ip", ["addr", "add", `${ns.hostIp}/24`, "dev", ns.#veth]);
      await sh("ip", ["link", "set", ns.#veth, "up"]);
      await sh("ip", ["-n", ns.name, "addr", "add", `${ns.nsIp}/24`, "dev", "eth0"]);
      await sh("ip", ["-n", ns.name, "link", "set", "eth0", "up"]);
      await sh("ip", ["-n", ns.name, "link", "set", "lo", "up"]);
    } catch (error) {
      await ns.close();
      throw error;
    }
    return ns;
  }

  /** Sets a sysctl inside the namespace, as the runtime does for a pod's `sysctls`. */
  async sysctl(key: string, value: string): Promise<void> {
    await sh("ip", ["netns", "exec", this.name, "sysctl", "-q", "-w", `${key}=${value}`]);
  }

  /** `argv` run inside the namespace. */
  exec(argv: readonly string[]): string[] {
    return ["ip", "netns", "exec", this.name, ...argv];
  }

  /** Deletes the namespace and with it both ends of the veth pair; idempotent. */
  async close(): Promise<void> {
    await new Deno.Command("ip", { args: ["netns", "del", this.name], stderr: "null" }).output();
    await new Deno.Command("ip", { args: ["link", "del", this.#veth], stderr: "null" }).output();
  }
}

/**
 * A copy of what `serve` needs that another user can read: the Deno binary, `src/` with
 * `deno.json` and `deno.lock`, and the npm packages (hard links into the Deno cache).
 */
export interface ReadableRuntime {
  readonly dir: string;
  readonly deno: string;
  /** Holds `src/main.ts`: stands for /opt/nautiluslb. */
  readonly app: string;
  readonly denoDir: string;
  close(): Promise<void>;
}

/** Builds a {@linkcode ReadableRuntime} whose cache directory `owner` may write. */
export async function readableRuntime(owner: number): Promise<ReadableRuntime> {
  const sourceDenoDir = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`;
  await sh(Deno.execPath(), ["cache", "--quiet", "src/main.ts"], { cwd: REPO_ROOT });
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb-runtime-" });
  await Deno.chmod(dir, 0o755);
  const app = `${dir}/app`;
  const denoDir = `${dir}/deno-dir`;
  await Deno.mkdir(app);
  await Deno.mkdir(denoDir);
  await sh("cp", ["-r", `${REPO_ROOT}src`, `${REPO_ROOT}deno.json`, `${REPO_ROOT}deno.lock`, app]);
  await sh("cp", ["-al", `${sourceDenoDir}/npm`, `${denoDir}/npm`]);
  await sh("chmod", ["-R", "a+rX", app, denoDir]);
  await Deno.chown(denoDir, owner, null);
  const deno = `${dir}/deno`;
  await Deno.copyFile(Deno.execPath(), deno);
  await Deno.chmod(deno, 0o755);
  return { dir, deno, app, denoDir, close: () => Deno.remove(dir, { recursive: true }) };
}

/** A TCP server on `hostname` that sends `name` to each client, then closes the connection. */
export class NamedServer {
  readonly port: number;
  readonly #listener: Deno.TcpListener;
  readonly #done: Promise<void>;

  constructor(hostname: string, name: string) {
    const listener = Deno.listen({ hostname, port: 0 });
    this.#listener = listener;
    this.port = listener.addr.port;
    const bytes = new TextEncoder().encode(name);
    this.#done = (async () => {
      for await (const conn of listener) {
        conn.write(bytes).catch(() => {}).finally(() => conn.close());
      }
    })().catch(() => {});
  }

  /** Stops accepting; a client connecting afterwards is refused. */
  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    await this.#done;
  }
}

/** Kills `child` if it still runs, waits for it and returns its stderr (for failure messages). */
export async function stopChild(child: Deno.ChildProcess): Promise<string> {
  try {
    child.kill("SIGKILL");
  } catch {
    // exited already
  }
  const out = await child.output();
  return new TextDecoder().decode(out.stderr);
}
