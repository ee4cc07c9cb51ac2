/**
 * The local backends every proxy forwards to: two nginx instances (small static body,
 * keep-alive), two iperf3 servers (bulk), one idle server (accepts and holds). All on
 * 127.0.0.1, pinned to the load-generator core, configs in a temp dir.
 *
 * @module
 */
import { CHILD_NOFILE, freePort, type Proc, spawn, waitForPort } from "./_proc.ts";

/** Ports of the running backends. */
export interface BackendPorts {
  readonly nginx: readonly [number, number];
  readonly iperf: readonly [number, number];
  readonly idle: number;
}

/** Size of the static body nginx serves, in bytes. */
export const BODY_BYTES = 128;

/** Running backends; {@linkcode Backends.stop} kills them all. */
export interface Backends {
  readonly ports: BackendPorts;
  stop(): Promise<void>;
}

function nginxConfig(dir: string, name: string, port: number): string {
  return `worker_processes 1;
daemon off;
master_process off;
pid ${dir}/${name}.pid;
error_log stderr crit;
worker_rlimit_nofile ${CHILD_NOFILE};
events { worker_connections 30000; }
http {
  access_log off;
  client_body_temp_path ${dir}/${name}_body;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  default_type text/plain;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    root ${dir}/www;
    location / { try_files /index.html =404; }
  }
}
`;
}

/**
 * Starts all backends on `cpus`. On failure, whatever started is stopped before the error
 * is rethrown.
 */
export async function startBackends(dir: string, cpus: string, helper: string): Promise<Backends> {
  const procs: Proc[] = [];
  const stop = async () => {
    await Promise.all(procs.map((p) => p.kill(1000)));
  };
  try {
    await Deno.mkdir(`${dir}/www`, { recursive: true });
    await Deno.writeTextFile(`${dir}/www/index.html`, "x".repeat(BODY_BYTES - 1) + "\n");
    const nginx: [number, number] = [freePort(), freePort()];
    const iperf: [number, number] = [freePort(), freePort()];
    const idle = freePort();
    for (const [i, port] of nginx.entries()) {
      const name = `nginx_${i}`;
      const file = `${dir}/${name}.conf`;
      await Deno.writeTextFile(file, nginxConfig(dir, name, port));
      procs.push(spawn(name, "nginx", ["-e", "stderr", "-p", dir, "-c", file], {
        cpus,
        nofile: CHILD_NOFILE,
      }));
    }
    for (const [i, port] of iperf.entries()) {
      procs.push(spawn(`iperf3_${i}`, "iperf3", ["-s", "-B", "127.0.0.1", "-p", String(port)], {
        cpus,
      }));
    }
    procs.push(spawn("idle_server", Deno.execPath(), [
      "run",
      "--allow-net=127.0.0.1",
      helper,
      "idle-server",
      String(idle),
    ], { cpus, nofile: CHILD_NOFILE }));
    const ports = [...nginx, ...iperf, idle];
    await Promise.all(ports.map((port, i) => waitForPort(port, 10_000, procs[i])));
    return { ports: { nginx, iperf, idle }, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
