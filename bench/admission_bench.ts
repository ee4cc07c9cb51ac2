/**
 * `deno task bench:admission [--rounds N] [--seconds N] [--concurrency N]`: new connections per
 * second through `serve` with and without admission rules: a source ACL of 1,000 allow and
 * 1,000 deny entries (the client matching only the last allow entry) and a
 * `maxConnectionsPerSource` above the load's concurrency, so every connection is checked
 * and none refused. Rounds interleave the two configs; the median of each and the spread of
 * the per-round ratios are printed.
 *
 * Each connection: connect, read one byte the backend sends, close. The backend and the load
 * run in this process, the proxy in a child, both on loopback. First, the cost of one
 * admission check with the same rules is timed in-process, which the end-to-end rates
 * (noisy on a shared machine) cannot resolve.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { CidrList } from "../src/core/cidr.ts";
import { Admission } from "../src/proxy/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "4" },
    concurrency: { type: "string", default: "16" },
  },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const ROOT = new URL("../", import.meta.url).pathname;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr;
  l.close();
  return port;
}

/** Sends one byte to each client, then closes. */
function startBackend(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const byte = new Uint8Array([120]);
  (async () => {
    for await (const conn of listener) {
      conn.write(byte).catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch {
          // closed
        }
      });
    }
  })().catch(() => {});
  return { port: listener.addr.port, close: () => listener.close() };
}

/** 1,000 blocks in 10.0.0.0/8 and 2001:db8::/32 that do not hold 127.0.0.1. */
function blocks(offset: number): string[] {
  return Array.from(
    { length: 1000 },
    (_, i) =>
      i % 2 === 0
        ? `10.${offset + (i >> 8)}.${i & 255}.0/24`
        : `2001:db8:${offset}:${i.toString(16)}::/64`,
  );
}

function config(listen: number, backend: number, withAdmission: boolean): string {
  const lines = [
    "settings:",
    "  logLevel: error",
    '  adminAddress: ""',
    "configurations:",
    "  - name: bench",
    `    listenerAddress: "127.0.0.1:${listen}"`,
    `    backends: ["127.0.0.1:${backend}"]`,
    "    maxConnections: 0",
    "    healthCheck: { enabled: false }",
  ];
  if (withAdmission) {
    lines.push(
      `    maxConnectionsPerSource: ${CONCURRENCY * 4}`,
      "    access:",
      `      allow: ${JSON.stringify([...blocks(0).slice(1), "127.0.0.0/8"])}`,
      `      deny: ${JSON.stringify(blocks(100))}`,
    );
  }
  return lines.join("\n") + "\n";
}

async function startServe(file: string, port: number): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-net",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      "src/main.ts",
      "serve",
      "-c",
      file,
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const deadline = performance.now() + 15_000;
  while (true) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return child;
    } catch (error) {
      if (performance.now() > deadline) throw new Error("serve did not start", { cause: error });
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Connections per second over `seconds` with `CONCURRENCY` loops; failures counted apart. */
async function load(port: number, seconds: number): Promise<{ rate: number; failed: number }> {
  let done = 0;
  let failed = 0;
  const until = performance.now() + seconds * 1000;
  const buffer = new Uint8Array(1);
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    const scratch = buffer.slice();
    while (performance.now() < until) {
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        const n = await conn.read(scratch);
        conn.close();
        if (n === 1) done++;
        else failed++;
      } catch {
        failed++;
      }
    }
  }));
  return { rate: done / seconds, failed };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Nanoseconds per call of `fn`, best of 3 runs of 500,000 calls. */
function nanosPerCall(fn: () => unknown): number {
  let best = Infinity;
  for (let run = 0; run < 3; run++) {
    const t0 = performance.now();
    for (let i = 0; i < 500_000; i++) fn();
    best = Math.min(best, (performance.now() - t0) * 1e6 / 500_000);
  }
  return best;
}

const admission = new Admission({
  allow: CidrList.from([...blocks(0).slice(1), "127.0.0.0/8"]),
  deny: CidrList.from(blocks(100)),
  maxConnectionsPerSource: 1000,
});
console.log("one admission check, 1,000 allow + 1,000 deny entries, in-process:");
for (const address of ["127.0.0.1", "::ffff:127.0.0.1", "2001:db8:0:3e7::1"]) {
  console.log(
    `  isAllowed(${address}): ${nanosPerCall(() => admission.isAllowed(address)).toFixed(0)} ns`,
  );
}
console.log(
  `  per-source acquire + release: ${
    nanosPerCall(() => admission.acquire("127.0.0.1")?.()).toFixed(0)
  } ns\n`,
);

const backend = startBackend();
const dir = await Deno.makeTempDir({ prefix: "nautiluslb-bench-admission-" });
const rates: Record<"plain" | "admission", number[]> = { plain: [], admission: [] };
let failures = 0;
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (
      const variant of round % 2 === 0
        ? ["plain", "admission"] as const
        : ["admission", "plain"] as const
    ) {
      const port = freePort();
      const file = `${dir}/${variant}.yaml`;
      await Deno.writeTextFile(file, config(port, backend.port, variant === "admission"));
      const child = await startServe(file, port);
      try {
        await load(port, 1); // warm-up: JIT, caches
        const { rate, failed } = await load(port, SECONDS);
        rates[variant].push(rate);
        failures += failed;
        console.log(`round ${round + 1} ${variant}: ${rate.toFixed(0)} conn/s`);
      } finally {
        child.kill("SIGTERM");
        await child.status;
      }
    }
  }
} finally {
  backend.close();
  await Deno.remove(dir, { recursive: true });
}
const ratios = rates.plain.map((p, i) => rates.admission[i]! / p);
console.log(
  `\nnew connections/s, ${ROUNDS} rounds x ${SECONDS}s, ${CONCURRENCY} concurrent, loopback:` +
    `\n  without admission: median ${median(rates.plain).toFixed(0)} (${
      rates.plain.map((r) => r.toFixed(0)).join(", ")
    })` +
    `\n  ACL 1,000 allow + 1,000 deny, maxConnectionsPerSource: median ${
      median(rates.admission).toFixed(0)
    } (${rates.admission.map((r) => r.toFixed(0)).join(", ")})` +
    `\n  ratio per round: ${
      ratios.map((r) => r.toFixed(3)).join(", ")
    }; failed connections: ${failures}`,
);
