/**
 * The proxies under test, each started from a generated config with the same listeners:
 * `http` (round robin over both nginx), `bulkA`/`bulkB` (one iperf3 server each, since an
 * iperf3 test must keep all its connections on one server) and `idle` (the idle server).
 * `direct` starts nothing and points every listener at a backend.
 *
 * @module
 */
import type { BackendPorts } from "./_backends.ts";
import { CHILD_NOFILE, freePort, type Proc, spawn, waitForPort } from "./_proc.ts";

/** Names of the proxies, in the column order of the report. */
export const PROXY_NAMES = [
  "nautiluslb",
  "haproxy",
  "bare",
  "direct",
  "nautiluslb_w2",
  "haproxy_t2",
] as const;
/** One of {@linkcode PROXY_NAMES}. */
export type ProxyName = typeof PROXY_NAMES[number];
/** What a run measures unless `--proxies` says otherwise. */
export const DEFAULT_PROXIES: readonly ProxyName[] = ["nautiluslb", "haproxy", "bare", "direct"];
/**
 * `--workers`: one core's worth against two, NautilusLB `workers: 1` / `2` and HAProxy
 * `nbthread 1` / `2`, all on both cores.
 */
export const WORKERS_PROXIES: readonly ProxyName[] = [
  "nautiluslb",
  "nautiluslb_w2",
  "haproxy",
  "haproxy_t2",
];

/** Ports a workload connects to. */
export interface ListenerPorts {
  readonly http: number;
  readonly bulkA: number;
  readonly bulkB: number;
  readonly idle: number;
}

/** A started proxy. `proc` is absent for `direct`. */
export interface RunningProxy {
  readonly name: ProxyName;
  readonly ports: ListenerPorts;
  readonly proc?: Proc;
  stop(): Promise<void>;
}

/** What starting a proxy needs. */
export interface ProxyContext {
  /** Temp dir for generated configs. */
  readonly dir: string;
  /** Repository root (for `src/main.ts` and `bench/bare_proxy.ts`). */
  readonly root: string;
  /** Core list the proxy is pinned to. */
  readonly cpus: string;
  readonly backends: BackendPorts;
}

/** HAProxy refuses to start unless about 2 fds per connection fit under the fd limit. */
const HAPROXY_MAXCONN = Math.floor((CHILD_NOFILE - 100) / 2);

function listenerPorts(): ListenerPorts {
  return { http: freePort(), bulkA: freePort(), bulkB: freePort(), idle: freePort() };
}

/** Listener name → backend ports, the same for every proxy. */
function routes(ports: ListenerPorts, b: BackendPorts): [string, number, number[]][] {
  return [
    ["http", ports.http, [...b.nginx]],
    ["bulk_a", ports.bulkA, [b.iperf[0]]],
    ["bulk_b", ports.bulkB, [b.iperf[1]]],
    ["idle", ports.idle, [b.idle]],
  ];
}

/** NautilusLB config: static backends, round robin, no health checks, no admin, quiet. */
export function nautilusConfig(ports: ListenerPorts, b: BackendPorts, workers = 1): string {
  const lines = [
    "settings:",
    "  logLevel: warning",
    '  adminAddress: ""',
    `  workers: ${workers}`,
    "configurations:",
  ];
  for (const [name, port, backends] of routes(ports, b)) {
    lines.push(
      `  - name: ${name}`,
      `    listenerAddress: "127.0.0.1:${port}"`,
      "    balancer: round_robin",
      "    maxConnections: 0",
      "    healthCheck:",
      "      enabled: false",
      `    backends: [${backends.map((p) => `"127.0.0.1:${p}"`).join(", ")}]`,
    );
  }
  return lines.join("\n") + "\n";
}

/** HAProxy config: TCP mode, round robin, `threads` threads (one by default), no checks. */
export function haproxyConfig(ports: ListenerPorts, b: BackendPorts, threads = 1): string {
  const lines = [
    "global",
    `  nbthread ${threads}`,
    `  maxconn ${HAPROXY_MAXCONN}`,
    "defaults",
    "  mode tcp",
    "  balance roundrobin",
    "  timeout connect 2s",
    "  timeout client 1h",
    "  timeout server 1h",
  ];
  for (const [name, port, backends] of routes(ports, b)) {
    lines.push(
      `frontend fe_${name}`,
      `  bind 127.0.0.1:${port}`,
      `  maxconn ${HAPROXY_MAXCONN}`,
      `  default_backend be_${name}`,
      `backend be_${name}`,
      ...backends.map((p, i) => `  server s${i} 127.0.0.1:${p}`),
    );
  }
  return lines.join("\n") + "\n";
}

async function started(
  name: ProxyName,
  proc: Proc,
  ports: ListenerPorts,
): Promise<RunningProxy> {
  try {
    await Promise.all(Object.values(ports).map((p) => waitForPort(p, 20_000, proc)));
  } catch (error) {
    await proc.kill();
    throw error;
  }
  return { name, ports, proc, stop: () => proc.kill() };
}

/** Starts one proxy and waits until all its listeners accept. */
export async function startProxy(name: ProxyName, ctx: ProxyContext): Promise<RunningProxy> {
  const b = ctx.backends;
  switch (name) {
    case "direct": {
      const ports = { http: b.nginx[0], bulkA: b.iperf[0], bulkB: b.iperf[1], idle: b.idle };
      return { name, ports, stop: () => Promise.resolve() };
    }
    case "nautiluslb":
    case "nautiluslb_w2": {
      const ports = listenerPorts();
      const file = `${ctx.dir}/${name}.yaml`;
      await Deno.writeTextFile(file, nautilusConfig(ports, b, name === "nautiluslb_w2" ? 2 : 1));
      const proc = spawn(name, Deno.execPath(), [
        "run",
        "--unstable-net",
        "--allow-net",
        "--allow-read",
        "--allow-env",
        ...(Deno.env.get("BENCH_NAUTILUS_FLAGS")?.split(" ").filter((s) => s !== "") ?? []),
        `${ctx.root}/src/main.ts`,
        "serve",
        "-c",
        file,
      ], { cpus: ctx.cpus, nofile: CHILD_NOFILE, cwd: ctx.root });
      return await started(name, proc, ports);
    }
    case "haproxy":
    case "haproxy_t2": {
      const ports = listenerPorts();
      const file = `${ctx.dir}/${name}.cfg`;
      await Deno.writeTextFile(file, haproxyConfig(ports, b, name === "haproxy_t2" ? 2 : 1));
      const proc = spawn(name, "haproxy", ["-db", "-f", file], {
        cpus: ctx.cpus,
        nofile: CHILD_NOFILE,
      });
      return await started(name, proc, ports);
    }
    case "bare": {
      const ports = listenerPorts();
      const args = routes(ports, b).map(([, port, backends]) =>
        `127.0.0.1:${port}=${backends.map((p) => `127.0.0.1:${p}`).join(",")}`
      );
      const proc = spawn(name, Deno.execPath(), [
        "run",
        "--allow-net=127.0.0.1",
        `${ctx.root}/bench/bare_proxy.ts`,
        ...args,
      ], { cpus: ctx.cpus, nofile: CHILD_NOFILE });
      return await started(name, proc, ports);
    }
  }
}
