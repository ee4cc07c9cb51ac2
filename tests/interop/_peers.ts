/**
 * Real nginx and HAProxy processes for interop tests, from the distribution packages
 * (`scripts/interop_install.sh`). Each peer gets a fresh temp dir for its config, logs and
 * pid file, listens on a loopback port picked at start, and runs in the foreground as a
 * child of the test, so {@linkcode Peer.stop} (or the test ending) is all the cleanup.
 *
 * @module
 */

/** Loopback address peers listen on. */
export const PEER_HOST = "127.0.0.1";

/** Upper bound for a peer to start listening or to exit. */
export const PEER_WAIT_MS = 10_000;

const SEARCH_DIRS = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"];

/**
 * Finds an executable in the usual system directories or on `PATH`.
 * @returns its path, or `undefined` when it is not installed
 */
export function findExecutable(name: string): string | undefined {
  const path = Deno.env.get("PATH")?.split(":") ?? [];
  for (const dir of [...path, ...SEARCH_DIRS]) {
    try {
      const candidate = `${dir}/${name}`;
      const info = Deno.statSync(candidate);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return candidate;
    } catch {
      // not there
    }
  }
  return undefined;
}

/** A running peer process. */
export interface Peer {
  /** The loopback address it accepts on. */
  readonly host: string;
  /** The loopback port it accepts on. */
  readonly port: number;
  /** Its private temp dir (config, logs). */
  readonly dir: string;
  /** The peer's own error/diagnostic log so far, for assertion messages. */
  diagnostics(): Promise<string>;
  /** Stops the process (SIGTERM, then SIGKILL after a grace period) and removes its dir. */
  stop(): Promise<void>;
}

/** An nginx accepting the PROXY protocol on an HTTP listener. */
export interface NginxPeer extends Peer {
  /** Access log lines so far: `$proxy_protocol_addr:$proxy_protocol_port "$request"`. */
  accessLog(): Promise<string[]>;
}

/** An HAProxy TCP frontend forwarding to one backend with a PROXY header. */
export type HaproxyPeer = Peer;

/** Options for {@linkcode startHaproxy}. */
export interface HaproxyOptions {
  /** The backend port on {@linkcode PEER_HOST}. */
  readonly backendPort: number;
  /** `v1` → `send-proxy`, `v2` → `send-proxy-v2`. */
  readonly version: "v1" | "v2";
  /**
   * Extra words for the `server` line, e.g. `proxy-v2-options crc32c` to add TLVs.
   * @default {""}
   */
  readonly serverOptions?: string;
  /**
   * The frontend's loopback address; `::1` makes HAProxy send TCP6 headers.
   * @default {"127.0.0.1"}
   */
  readonly frontendHost?: "127.0.0.1" | "::1";
}

/** Picks a free loopback port (closed again; the peer binds it right after). */
function freePort(host: string): number {
  const listener = Deno.listen({ hostname: host, port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  }
}

/** Waits until `port` accepts a connection or the process exits. */
async function waitListening(
  host: string,
  port: number,
  exited: Promise<Deno.CommandStatus>,
  signal: AbortSignal,
): Promise<boolean> {
  let hasExited = false;
  exited.then(() => hasExited = true, () => hasExited = true);
  while (!signal.aborted && !hasExited) {
    try {
      const conn = await Deno.connect({ hostname: host, port });
      conn.close();
      return true;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return false;
}

interface Spawned {
  readonly child: Deno.ChildProcess;
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly logPath: string;
}

/**
 * Starts `render(port, dir)` as a config and `command(dir)` as the process, retrying on a
 * fresh port if another process took the picked one first.
 */
async function spawnPeer(
  name: string,
  render: (port: number, dir: string) => string,
  args: (configPath: string, dir: string) => string[],
  host = PEER_HOST,
): Promise<Spawned> {
  const executable = findExecutable(name);
  if (!executable) {
    throw new Error(`Cannot start ${name}: not installed, run scripts/interop_install.sh`);
  }
  let lastLog = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = await Deno.makeTempDir({ prefix: `interop_${name}_` });
    const port = freePort(host);
    const configPath = `${dir}/${name}.conf`;
    const logPath = `${dir}/${name}.log`;
    await Deno.writeTextFile(configPath, render(port, dir));
    // `exec` keeps the peer's pid as the child's, so signals reach it directly.
    const quoted = [executable, ...args(configPath, dir)].map((a) => `'${a}'`).join(" ");
    const child = new Deno.Command("/bin/sh", {
      args: ["-c", `exec ${quoted} >'${logPath}' 2>&1`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const isUp = await waitListening(host, port, child.status, AbortSignal.timeout(PEER_WAIT_MS));
    if (isUp) return { child, host, port, dir, logPath };
    lastLog = await readText(logPath);
    await stopChild(child);
    await Deno.remove(dir, { recursive: true });
  }
  throw new Error(`Cannot start ${name}: it did not listen within ${PEER_WAIT_MS} ms: ${lastLog}`);
}

async function stopChild(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // already exited
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
  }, PEER_WAIT_MS);
  try {
    await child.status;
  } finally {
    clearTimeout(timer);
  }
}

function peerOf(spawned: Spawned): Peer {
  let isStopped = false;
  return {
    host: spawned.host,
    port: spawned.port,
    dir: spawned.dir,
    diagnostics: () => readText(spawned.logPath),
    async stop() {
      if (isStopped) return;
      isStopped = true;
      await stopChild(spawned.child);
      await Deno.remove(spawned.dir, { recursive: true });
    },
  };
}

/**
 * Starts nginx with one HTTP server on a loopback port that requires the PROXY protocol
 * (`listen … proxy_protocol`), answers every request with `200 ok`, and logs the address
 * the header carried. One process (`master_process off`), no daemon, everything in its dir.
 */
export async function startNginx(): Promise<NginxPeer> {
  const render = (port: number, dir: string) => `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
http {
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  log_format pp '$proxy_protocol_addr:$proxy_protocol_port "$request"';
  access_log off;
  server {
    listen ${PEER_HOST}:${port} proxy_protocol;
    access_log ${dir}/access.log pp;
    location / { return 200 "ok\\n"; }
  }
}
`;
  const spawned = await spawnPeer(
    "nginx",
    render,
    (config, dir) => ["-p", dir, "-e", `${dir}/error.log`, "-c", config],
  );
  const peer = peerOf(spawned);
  return {
    ...peer,
    diagnostics: () => readText(`${spawned.dir}/error.log`),
    async accessLog() {
      const text = await readText(`${spawned.dir}/access.log`);
      return text.split("\n").filter((line) => line.length > 0);
    },
  };
}

/**
 * Starts HAProxy in the foreground with a TCP frontend on a loopback port and one backend
 * server that receives a PROXY header (`send-proxy` or `send-proxy-v2`) per connection.
 */
export async function startHaproxy(options: HaproxyOptions): Promise<HaproxyPeer> {
  const send = options.version === "v1" ? "send-proxy" : "send-proxy-v2";
  const host = options.frontendHost ?? PEER_HOST;
  // HAProxy reads the last colon as the port separator, so IPv6 needs no brackets.
  const render = (port: number) => `
global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind ${host}:${port}
  default_backend be
backend be
  server s1 ${PEER_HOST}:${options.backendPort} ${send} ${options.serverOptions ?? ""}
`;
  return peerOf(await spawnPeer("haproxy", render, (config) => ["-db", "-f", config], host));
}

/**
 * Starts `name` (e.g. `nginx`, `haproxy`) with a config of the caller's: `render(port, dir)`
 * writes it for the picked loopback port, `args(configPath, dir)` are the command line.
 */
export async function startPeer(
  name: string,
  render: (port: number, dir: string) => string,
  args: (configPath: string, dir: string) => string[],
): Promise<Peer> {
  return peerOf(await spawnPeer(name, render, args));
}
