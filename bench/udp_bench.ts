/**
 * `deno task bench:udp [--rounds N] [--seconds N] [--output FILE]`: DNS over UDP through
 * NautilusLB (`protocol: udp`) beside nginx's stream module (`listen … udp`) and the direct
 * path, one dnsmasq backend, `dnsperf` as the client; rounds interleaved (the order rotates
 * each round), medians reported as ratios. Queries per second and p99 latency (from dnsperf's
 * per-query `-v` lines). Writes `bench/RESULTS_UDP.md`.
 *
 * Needs dnsmasq, dnsperf and nginx (`bash scripts/udp_install.sh`).
 *
 * @module
 */
import { parseArgs } from "node:util";

const HOST = "127.0.0.1";
const ROOT = new URL("../", import.meta.url);

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "3" },
    clients: { type: "string", default: "8" },
    output: { type: "string", default: new URL("bench/RESULTS_UDP.md", ROOT).pathname },
  },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const CLIENTS = Number(values.clients);

function freeUdpPort(): number {
  const socket = Deno.listenDatagram({ hostname: HOST, port: 0, transport: "udp" });
  const port = (socket.addr as Deno.NetAddr).port;
  socket.close();
  return port;
}

function freeTcpPort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

const children: Deno.ChildProcess[] = [];

function spawn(cmd: string, args: string[]): Deno.ChildProcess {
  const child = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).spawn();
  children.push(child);
  return child;
}

/** dnsperf for `SECONDS` against `port`: queries per second and p99 latency in ms. */
async function dnsperf(port: number, queries: string): Promise<{ qps: number; p99Ms: number }> {
  const { stdout } = await new Deno.Command("dnsperf", {
    args: [
      "-s",
      HOST,
      "-p",
      String(port),
      "-d",
      queries,
      "-l",
      String(SECONDS),
      "-c",
      String(CLIENTS),
      "-q",
      "64",
      "-t",
      "2",
      "-v",
    ],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(stdout);
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const latencies: number[] = [];
  for (const match of text.matchAll(/^> \S+ \S+ \S+ ([\d.]+)$/gm)) {
    latencies.push(Number(match[1]));
  }
  latencies.sort((a, b) => a - b);
  const p99 = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))];
  return { qps, p99Ms: (p99 ?? NaN) * 1000 };
}

async function answers(port: number): Promise<boolean> {
  const { stdout } = await new Deno.Command("dig", {
    args: ["+short", "+time=1", "+tries=1", `@${HOST}`, "-p", String(port), "health.test", "A"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(stdout).includes("192.0.2.53");
}

/** Whether `port` answers within `tries` attempts. */
async function waitAnswers(port: number, tries = 50): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await answers(port)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const dir = await Deno.makeTempDir({ prefix: "nlb-udp-bench-" });
try {
  const queries = `${dir}/queries.txt`;
  await Deno.writeTextFile(queries, "health.test A\n");

  // A port free for UDP may be taken for TCP, which dnsmasq binds too: try a few.
  let backend = 0;
  for (let attempt = 0; attempt < 5 && backend === 0; attempt++) {
    const port = freeUdpPort();
    const child = spawn("dnsmasq", [
      "-k",
      "--conf-file=/dev/null",
      "--no-resolv",
      "--no-hosts",
      `--listen-address=${HOST}`,
      "--bind-interfaces",
      `--port=${port}`,
      "--address=/health.test/192.0.2.53",
      "--pid-file=",
      ...(Deno.uid() === 0 ? ["--user=root"] : []),
    ]);
    if (await waitAnswers(port, 10)) backend = port;
    else child.kill("SIGKILL");
  }
  if (backend === 0) throw new Error("Cannot start dnsmasq");

  const nautilus = freeUdpPort();
  await Deno.writeTextFile(
    `${dir}/config.yaml`,
    `settings:
  adminAddress: "${HOST}:${freeTcpPort()}"
configurations:
  - name: dns
    listenerAddress: "${HOST}:${nautilus}"
    protocol: udp
    backends: ["${HOST}:${backend}"]
    healthCheck:
      dnsQuery: health.test
`,
  );
  spawn(Deno.execPath(), [
    "run",
    "--unstable-net",
    "--allow-net",
    "--allow-read",
    "--allow-env",
    new URL("src/main.ts", ROOT).pathname,
    "serve",
    "-c",
    `${dir}/config.yaml`,
  ]);
  if (!await waitAnswers(nautilus)) throw new Error("Cannot reach NautilusLB");

  const nginx = freeUdpPort();
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
stream {
  server {
    listen ${HOST}:${nginx} udp;
    proxy_pass ${HOST}:${backend};
    proxy_responses 1;
    proxy_timeout 10s;
  }
}
`,
  );
  spawn("nginx", ["-p", dir, "-e", `${dir}/error.log`, "-c", `${dir}/nginx.conf`]);
  if (!await waitAnswers(nginx)) throw new Error("Cannot reach nginx");

  const targets = { direct: backend, nautiluslb: nautilus, "nginx-stream": nginx } as const;
  type Target = keyof typeof targets;
  const names = Object.keys(targets) as Target[];
  const samples = new Map<Target, { qps: number[]; p99Ms: number[] }>(
    names.map((n) => [n, { qps: [], p99Ms: [] }]),
  );
  for (let round = 0; round < ROUNDS; round++) {
    const order = names.map((_, i) => names[(i + round) % names.length]!);
    for (const name of order) {
      const result = await dnsperf(targets[name], queries);
      samples.get(name)!.qps.push(result.qps);
      samples.get(name)!.p99Ms.push(result.p99Ms);
      console.error(
        `round ${round + 1} ${name}: ${Math.round(result.qps)} q/s, p99 ${
          result.p99Ms.toFixed(3)
        } ms`,
      );
    }
  }
  const m = (name: Target) => ({
    qps: median(samples.get(name)!.qps),
    p99: median(samples.get(name)!.p99Ms),
  });
  const direct = m("direct");
  const ng = m("nginx-stream");
  const rows = names.map((name) => {
    const v = m(name);
    const spread = (xs: number[]) =>
      `${Math.round(Math.min(...xs))}-${Math.round(Math.max(...xs))}`;
    return `| ${name} | ${Math.round(v.qps)} (${spread(samples.get(name)!.qps)}) | ${
      v.p99.toFixed(3)
    } | ${(v.qps / direct.qps).toFixed(2)} | ${(v.qps / ng.qps).toFixed(2)} | ${
      (v.p99 / ng.p99).toFixed(2)
    } |`;
  });
  const report = `# UDP (DNS) benchmark

\`deno task bench:udp --rounds ${ROUNDS} --seconds ${SECONDS}\`, ${new Date().toISOString()}:
dnsperf ${CLIENTS} clients, 64 queries outstanding, ${SECONDS} s per run, one dnsmasq backend
(\`--cache-size\` default, a local \`--address\` answer), ${ROUNDS} interleaved rounds (order
rotated each round), medians (min-max in parentheses). NautilusLB \`workers: 1\`, nginx
\`worker_processes 1\`. Loopback, a shared 2-core machine: absolute numbers are noisy, the
ratios less so.

| target | queries/s | p99 ms | q/s vs direct | q/s vs nginx | p99 vs nginx |
|---|---|---|---|---|---|
${rows.join("\n")}
`;
  await Deno.writeTextFile(values.output!, report);
  // The repository's `deno fmt --check` covers Markdown: write the file as fmt would.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", values.output!] }).output();
  console.log(report);
} finally {
  for (const child of children) {
    try {
      child.kill("SIGTERM");
    } catch {
      // exited
    }
    await child.status;
  }
  await Deno.remove(dir, { recursive: true });
}
