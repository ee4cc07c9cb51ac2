/**
 * `deno task bench:tls [--rounds N] [--seconds N] [--concurrency N]`: new TLS connections per
 * second through a `protocol: tls` listener, beside HAProxy doing the same SNI routing
 * (`req.ssl_sni` + map) and beside our plain `tcp` listener on the same bytes (the cost of
 * the peek).
 *
 * Each client connection sends one 512-byte ClientHello for `api.example.com` and reads the
 * backend's 4-byte answer (see `_tls_load.ts`: no crypto at either end, so the proxy's
 * path is what is measured). Proxies run on core 0, client and backend on core 1. The
 * variants are measured in turn, in rotating order each round, so drift on a shared machine
 * hits all; the report gives each one's median and range, and ratios of medians.
 *
 * @module
 */
import { CHILD_NOFILE, delay, freePort, killAll, run, spawn, waitForPort } from "./_proc.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const LOAD = `${ROOT}/bench/_tls_load.ts`;

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

function nautilusConfig(tlsPort: number, tcpPort: number, backend: number): string {
  return `settings:
  logLevel: warning
  adminAddress: ""
configurations:
  - name: tls
    listenerAddress: "127.0.0.1:${tlsPort}"
    protocol: tls
    maxConnections: 0
    healthCheck: { enabled: false }
    tls:
      routes:
        - { name: api, hosts: [api.example.com, "*.example.org"], backends: ["127.0.0.1:${backend}"] }
        - { name: other, hosts: ["**.example.net"], backends: ["127.0.0.1:${backend}"] }
  - name: tcp
    listenerAddress: "127.0.0.1:${tcpPort}"
    maxConnections: 0
    healthCheck: { enabled: false }
    backends: ["127.0.0.1:${backend}"]
`;
}

function haproxyConfig(dir: string, port: number, backend: number): string {
  Deno.writeTextFileSync(`${dir}/sni.map`, "api.example.com be_api\n");
  return `global
  maxconn 4000
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:${port}
  tcp-request inspect-delay 5s
  tcp-request content accept if { req.ssl_hello_type 1 }
  use_backend %[req.ssl_sni,lower,map(${dir}/sni.map,be_api)]
  default_backend be_api
backend be_api
  server s 127.0.0.1:${backend}
`;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const rounds = intArg("--rounds", 3);
  const seconds = intArg("--seconds", 3);
  const concurrency = intArg("--concurrency", 32);
  const cores = navigator.hardwareConcurrency;
  const proxyCpus = "0";
  const loadCpus = cores >= 2 ? "1" : "0";
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb-tls-bench-" });
  try {
    const backend = freePort();
    const load = (name: string, args: string[]) =>
      spawn(name, Deno.execPath(), ["run", "--allow-net", "--allow-read", LOAD, ...args], {
        cpus: loadCpus,
        nofile: CHILD_NOFILE,
        cwd: ROOT,
      });
    const backendProc = load("backend", ["backend", String(backend)]);
    await waitForPort(backend, 30_000, backendProc);

    const tlsPort = freePort();
    const tcpPort = freePort();
    await Deno.writeTextFile(`${dir}/nautiluslb.yaml`, nautilusConfig(tlsPort, tcpPort, backend));
    const nautilus = spawn("nautiluslb", Deno.execPath(), [
      "run",
      "--unstable-net",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      `${ROOT}/src/main.ts`,
      "serve",
      "-c",
      `${dir}/nautiluslb.yaml`,
    ], { cpus: proxyCpus, nofile: CHILD_NOFILE, cwd: ROOT });
    await waitForPort(tlsPort, 30_000, nautilus);
    await waitForPort(tcpPort, 30_000, nautilus);
    const haproxyPort = freePort();
    await Deno.writeTextFile(`${dir}/haproxy.cfg`, haproxyConfig(dir, haproxyPort, backend));
    const haproxy = spawn("haproxy", "haproxy", ["-db", "-f", `${dir}/haproxy.cfg`], {
      cpus: proxyCpus,
      nofile: CHILD_NOFILE,
    });
    await waitForPort(haproxyPort, 10_000, haproxy);

    const variants = [
      { name: "nautiluslb tls", port: tlsPort },
      { name: "nautiluslb tcp", port: tcpPort },
      { name: "haproxy tls (req.ssl_sni)", port: haproxyPort },
    ];
    const measure = async (port: number, secs: number) => {
      const out = await run("client", Deno.execPath(), [
        "run",
        "--allow-net",
        "--allow-read",
        LOAD,
        "client",
        String(port),
        String(secs),
        String(concurrency),
      ], { cpus: loadCpus, nofile: CHILD_NOFILE, cwd: ROOT, timeoutMs: (secs + 30) * 1000 });
      const { connections, failures } = JSON.parse(out.trim().split("\n").at(-1)!) as {
        connections: number;
        failures: number;
      };
      return { rate: connections / secs, failures };
    };
    for (const v of variants) await measure(v.port, 1); // warm-up (JIT)
    const rates: Record<string, number[]> = {};
    let failures = 0;
    for (let round = 0; round < rounds; round++) {
      const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
      for (const v of order) {
        const got = await measure(v.port, seconds);
        (rates[v.name] ??= []).push(got.rate);
        failures += got.failures;
        console.error(`round ${round + 1}/${rounds} ${v.name}: ${got.rate.toFixed(0)} conn/s`);
        await delay(200);
      }
    }
    const m = (name: string) => median(rates[name]!);
    const lines = [
      `| variant | new conn/s (median of ${rounds}) | min-max |`,
      "| --- | ---: | ---: |",
      ...variants.map((v) =>
        `| ${v.name} | ${m(v.name).toFixed(0)} | ${Math.min(...rates[v.name]!).toFixed(0)}-${
          Math.max(...rates[v.name]!).toFixed(0)
        } |`
      ),
      "",
      `nautiluslb tls / haproxy tls: ${
        (m("nautiluslb tls") / m("haproxy tls (req.ssl_sni)")).toFixed(3)
      }; nautiluslb tls / nautiluslb tcp (cost of the peek): ${
        (m("nautiluslb tls") / m("nautiluslb tcp")).toFixed(3)
      }; failed connections: ${failures}`,
      `${rounds} rounds x ${seconds} s, ${concurrency} concurrent clients, ${cores} cores, proxy on core ${proxyCpus}`,
    ];
    console.log(lines.join("\n"));
  } finally {
    await killAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
