/**
 * Real DNS peers for the UDP tests: dnsmasq as a backend answering a TXT record with its own
 * name, and `kdig` as a client. Tests that need them skip with one notice line unless
 * `NAUTILUS_UDP_REQUIRED=1` (CI), where a missing tool fails instead.
 *
 * @module
 */
import { findExecutable } from "../interop/_peers.ts";

/** Whether the UDP proof must run (CI); missing tools then fail instead of skipping. */
export const IS_REQUIRED = Deno.env.get("NAUTILUS_UDP_REQUIRED") === "1";

/**
 * `true` when every tool is installed (and, with `needsRoot`, the process is root); else
 * prints one notice line and returns `false`, or throws under `NAUTILUS_UDP_REQUIRED=1`.
 */
export function haveTools(what: string, tools: readonly string[], needsRoot = false): boolean {
  const missing = tools.filter((t) => findExecutable(t) === undefined);
  const isRoot = Deno.uid() === 0;
  if (missing.length === 0 && (!needsRoot || isRoot)) return true;
  const why = [
    ...(missing.length > 0 ? [`missing ${missing.join(", ")}`] : []),
    ...(needsRoot && !isRoot ? ["not root"] : []),
  ].join(", ");
  const message = `${what}: ${why} (bash scripts/udp_install.sh)`;
  if (IS_REQUIRED) throw new Error(`Cannot run ${message}`);
  console.log(`skipped ${message}`);
  return false;
}

/** A running dnsmasq. */
export interface Dnsmasq {
  /** Its name, also the text of its `who.test` TXT record. */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Stops it (SIGKILL, so it answers nothing more) and waits for the exit. */
  kill(): Promise<void>;
}

/**
 * Starts dnsmasq on `host:port` (UDP and TCP), answering `who.test TXT` with `name`,
 * `NAME.test A` with `address` and `health.test A` (for DNS health checks); other names are
 * refused. `port` 0 takes a free one. `netns`
 * runs it inside that network namespace (`ip netns exec`).
 */
export async function startDnsmasq(
  name: string,
  options: { host?: string; port?: number; netns?: string; address?: string } = {},
): Promise<Dnsmasq> {
  const host = options.host ?? "127.0.0.1";
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = options.port || freeUdpPort(host, options.netns);
    const args = [
      "-k",
      "--conf-file=/dev/null",
      "--no-resolv",
      "--no-hosts",
      `--listen-address=${host}`,
      "--bind-interfaces",
      `--port=${port}`,
      `--txt-record=who.test,${name}`,
      `--address=/${name}.test/${options.address ?? "192.0.2.1"}`,
      "--address=/health.test/192.0.2.53",
      "--pid-file=",
      "--cache-size=0",
      ...(Deno.uid() === 0 ? ["--user=root"] : []),
    ];
    const command = options.netns === undefined
      ? new Deno.Command("dnsmasq", { args, stdout: "null", stderr: "piped" })
      : new Deno.Command("ip", {
        args: ["netns", "exec", options.netns, "dnsmasq", ...args],
        stdout: "null",
        stderr: "piped",
      });
    const child = command.spawn();
    const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let errors = "";
    const draining = (async () => {
      while (true) {
        const { value, done } = await stderr.read().catch(() => ({ value: "", done: true }));
        if (done) return;
        errors += value;
      }
    })();
    const kill = async () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone already
      }
      await child.status;
      await draining;
    };
    if (await answers(host, port, name, options.netns)) {
      return { name, host, port, kill };
    }
    await kill();
    if (options.port) throw new Error(`Cannot start dnsmasq on ${host}:${port}: ${errors}`);
  }
  throw new Error(`Cannot start dnsmasq on ${host}: no free port after 5 attempts`);
}

/**
 * Starts unbound on `127.0.0.1` (UDP and TCP) with local data only: `who.test TXT` answers
 * `name`, `health.test A` 192.0.2.53. Same {@linkcode Dnsmasq} handle.
 */
export async function startUnbound(name: string): Promise<Dnsmasq> {
  const host = "127.0.0.1";
  const dir = await Deno.makeTempDir({ prefix: "nlb-unbound-" });
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = freeUdpPort(host);
    const config = `${dir}/unbound.conf`;
    await Deno.writeTextFile(
      config,
      `server:
  interface: ${host}
  port: ${port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "${dir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  local-zone: "test." static
  local-data: "who.test. TXT ${name}"
  local-data: "health.test. A 192.0.2.53"
remote-control:
  control-enable: no
`,
    );
    const child = new Deno.Command("unbound", {
      args: ["-d", "-c", config],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const kill = async () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone already
      }
      await child.status;
    };
    if (await answers(host, port, name)) {
      return {
        name,
        host,
        port,
        kill: async () => {
          await kill();
          await Deno.remove(dir, { recursive: true }).catch(() => {});
        },
      };
    }
    await kill();
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  throw new Error(`Cannot start unbound on ${host}: no free port after 5 attempts`);
}

/** One `dig +short` run (bind9-dnsutils), UDP. */
export async function dig(host: string, port: number, query: readonly string[]): Promise<string> {
  const { stdout } = await new Deno.Command("dig", {
    args: ["+short", "+time=2", "+tries=1", `@${host}`, "-p", String(port), ...query],
    stdout: "piped",
    stderr: "null",
  }).output();
  return (new TextDecoder().decode(stdout).split("\n")[0] ?? "").replace(/^"|"$/g, "");
}

/** A UDP port that was free on `host` a moment ago (in `netns` when given). */
function freeUdpPort(host: string, netns?: string): number {
  if (netns !== undefined) return 20_000 + Math.floor(Math.random() * 40_000);
  const socket = Deno.listenDatagram({ hostname: host, port: 0, transport: "udp" });
  const port = (socket.addr as Deno.NetAddr).port;
  socket.close();
  return port;
}

/** Whether `who.test TXT` at `host:port` answers `name` within a few seconds. */
async function answers(host: string, port: number, name: string, netns?: string) {
  for (let i = 0; i < 20; i++) {
    const out = await kdig(host, port, ["who.test", "TXT"], { netns, timeoutS: 1 });
    if (out.text === name) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** One `kdig +short` run. */
export interface DigResult {
  /** The answer's first line without quotes; `""` when none. */
  readonly text: string;
  readonly code: number;
}

/**
 * Asks `host:port` with `kdig +short` (UDP unless `tcp`), from `source` (`-b`) when given,
 * inside `netns` when given.
 */
export async function kdig(
  host: string,
  port: number,
  query: readonly string[],
  options: { netns?: string; source?: string; timeoutS?: number; tcp?: boolean } = {},
): Promise<DigResult> {
  const args = [
    "+short",
    `+timeout=${options.timeoutS ?? 2}`,
    "+retry=0",
    ...(options.tcp ? ["+tcp"] : []),
    ...(options.source === undefined ? [] : ["-b", options.source]),
    `@${host}`,
    "-p",
    String(port),
    ...query,
  ];
  const command = options.netns === undefined
    ? new Deno.Command("kdig", { args, stdout: "piped", stderr: "null" })
    : new Deno.Command("ip", {
      args: ["netns", "exec", options.netns, "kdig", ...args],
      stdout: "piped",
      stderr: "null",
    });
  const { code, stdout } = await command.output();
  const first = new TextDecoder().decode(stdout).split("\n")[0] ?? "";
  return { text: first.replace(/^"|"$/g, ""), code };
}
