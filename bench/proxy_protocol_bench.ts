/**
 * `deno run -A bench/proxy_protocol_bench.ts [--rounds N] [--seconds N]`: what
 * `proxyProtocol: v2` costs on new connections per second.
 *
 * Two NautilusLB processes run side by side on the proxy core, the same config except that
 * one sends a v2 header to nginx's `proxy_protocol` port and the other nothing to its plain
 * port (one nginx process serves both, so the backend is the same). wrk opens a new
 * connection per request (`Connection: close`, 64 at a time). The two are measured
 * alternately in ABBA order, so drift on a shared machine hits both; the report gives the
 * median of each, the ratio v2 / off of the medians, and the spread of the per-pair ratios.
 *
 * @module
 */
import { BODY_BYTES } from "./_backends.ts";
import { CHILD_NOFILE, cpuSeconds, delay, freePort, killAll, spawn, waitForPort } from "./_proc.ts";
import { wrk } from "./_workloads.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const HELPER = `${ROOT}/bench/_helper.ts`;

function intArg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  if (i < 0) return fallback;
  const n = Number(Deno.args[i + 1]);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(
      `Cannot use ${name}: must be a positive integer: got '${Deno.args[i + 1]}'`,
    );
  }
  return n;
}

function nginxConfig(dir: string, plain: number, proxied: number): string {
  return `worker_processes 1;
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log stderr crit;
worker_rlimit_nofile ${CHILD_NOFILE};
events { worker_connections 30000; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  default_type text/plain;
  server {
    listen 127.0.0.1:${plain} backlog=4096;
    root ${dir}/www;
    location / { try_files /index.html =404; }
  }
  server {
    listen 127.0.0.1:${proxied} backlog=4096 proxy_protocol;
    root ${dir}/www;
    location / { try_files /index.html =404; }
  }
}
`;
}

function nautilusConfig(port: number, backend: number, proxyProtocol: "off" | "v2"): string {
  return `settings:
  logLevel: warning
  adminAddress: ""
configurations:
  - name: http
    listenerAddress: "127.0.0.1:${port}"
    maxConnections: 0
    proxyProtocol: ${proxyProtocol}
    healthCheck: { enabled: false }
    backends: ["127.0.0.1:${backend}"]
`;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const rounds = intArg("--rounds", 6);
  const seconds = intArg("--seconds", 5);
  const cores = navigator.hardwareConcurrency;
  const proxyCpus = "0";
  const loadCpus = cores >= 2 ? "1" : "0";
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb-pp-bench-" });
  try {
    await Deno.mkdir(`${dir}/www`);
    await Deno.writeTextFile(`${dir}/www/index.html`, "x".repeat(BODY_BYTES - 1) + "\n");
    const plain = freePort();
    const proxied = freePort();
    await Deno.writeTextFile(`${dir}/nginx.conf`, nginxConfig(dir, plain, proxied));
    const nginx = spawn("nginx", "nginx", ["-e", "stderr", "-p", dir, "-c", `${dir}/nginx.conf`], {
      cpus: loadCpus,
      nofile: CHILD_NOFILE,
    });
    await waitForPort(plain, 10_000, nginx);
    await waitForPort(proxied, 10_000, nginx);
    const variants = [
      { name: "off", backend: plain },
      { name: "v2", backend: proxied },
    ] as const;
    const running = [];
    for (const v of variants) {
      const port = freePort();
      const file = `${dir}/${v.name}.yaml`;
      await Deno.writeTextFile(file, nautilusConfig(port, v.backend, v.name));
      const proc = spawn(`nautiluslb_${v.name}`, Deno.execPath(), [
        "run",
        "--allow-net",
        "--allow-read",
        "--allow-env",
        `${ROOT}/src/main.ts`,
        "serve",
        "-c",
        file,
      ], { cpus: proxyCpus, nofile: CHILD_NOFILE, cwd: ROOT });
      await waitForPort(port, 30_000, proc);
      running.push({ ...v, port, pid: proc.pid });
    }
    const opts = { cpus: loadCpus, helper: HELPER };
    for (const r of running) await wrk(r.port, 64, 2, opts, true); // warm-up (JIT)
    const rates: Record<string, number[]> = { off: [], v2: [] };
    const cpu: Record<string, number[]> = { off: [], v2: [] };
    const pairRatios: number[] = [];
    const pairCpuRatios: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? running : [...running].reverse();
      const got: Record<string, number> = {};
      for (const r of order) {
        const before = cpuSeconds(r.pid);
        const result = await wrk(r.port, 64, seconds, opts, true, r.pid);
        const used = cpuSeconds(r.pid) - before;
        got[r.name] = result.requestsPerSecond;
        rates[r.name]!.push(result.requestsPerSecond);
        cpu[r.name]!.push(used * 1e6 / (result.requestsPerSecond * seconds));
        console.error(
          `round ${round + 1}/${rounds} ${r.name}: ${result.requestsPerSecond.toFixed(0)} conn/s`,
        );
        await delay(200);
      }
      pairRatios.push(got.v2! / got.off!);
      pairCpuRatios.push(cpu.v2!.at(-1)! / cpu.off!.at(-1)!);
    }
    const ratio = median(rates.v2!) / median(rates.off!);
    const lines = [
      `| proxyProtocol | new conn/s (median of ${rounds}) | min-max | CPU µs/conn (median) |`,
      "| --- | ---: | ---: | ---: |",
      ...running.map((r) =>
        `| ${r.name} | ${median(rates[r.name]!).toFixed(0)} | ${
          Math.min(...rates[r.name]!).toFixed(0)
        }-${Math.max(...rates[r.name]!).toFixed(0)} | ${median(cpu[r.name]!).toFixed(1)} |`
      ),
      "",
      `v2 / off, medians: ${ratio.toFixed(3)}; per ABBA pair: median ${
        median(pairRatios).toFixed(3)
      }, range ${Math.min(...pairRatios).toFixed(3)}-${Math.max(...pairRatios).toFixed(3)}`,
      `CPU per connection v2 / off, per pair: median ${median(pairCpuRatios).toFixed(3)}, range ${
        Math.min(...pairCpuRatios).toFixed(3)
      }-${Math.max(...pairCpuRatios).toFixed(3)}`,
      `${rounds} rounds x ${seconds} s, wrk -c64 Connection: close, ${cores} cores, proxy on core ${proxyCpus}`,
    ];
    console.log(lines.join("\n"));
  } finally {
    await killAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
