/**
 * Handover of a `protocol: tls` listener: a real `serve` routes ClientHellos by server name to
 * two routes (static backends that send their name, then echo), clients connect all along,
 * a second `serve --handover` binds the same listener (SO_REUSEPORT), gets ready, and the
 * first gets SIGTERM and drains. Every connection must reach the right route with its hello
 * and bytes echoed intact: none refused, reset, misrouted or timed out. Some clients send
 * their hello in three pieces 150 ms apart, a batch of them just before the SIGTERM, so the
 * old process holds connections still being peeked when it stops accepting.
 *
 * Runs inside a network namespace this test creates, with `net.ipv4.tcp_migrate_req=1` as
 * docs/reload_and_handover.md requires (without it Linux resets connections queued on the
 * closing listener, for any protocol): the test re-runs this file with `deno run` inside the
 * namespace and reads one JSON line of counts. Needs Linux >= 5.14, root and iproute2;
 * skipped otherwise with one notice line, unless `NAUTILUS_NETNS_REQUIRED=1`.
 */
import assert from "node:assert/strict";
import { buildClientHello } from "../src/proxy/tls/_test_hello.ts";
import {
  closeQuietly,
  copy,
  delay,
  freePort,
  randomBytes,
  readExactly,
  TestServer,
  withTimeout,
  writeAll,
} from "./_helpers.ts";
import { spawnServe, waitReady } from "./_serve_process.ts";
import { ignoreWithoutNetns } from "./reliability/_netns.ts";

/** A connection that takes longer counts as lost (a SYN sent again after 1 s and 3 s is not). */
const CONNECTION_BOUND_MS = 8_000;
/** Short connections started per 10 ms tick, alternating the two fast names. */
const FAST_PER_TICK = 2;
/** Every this many ticks one slow client (hello in three pieces) starts. */
const SLOW_EVERY_TICKS = 3;
const SLOW_GAP_MS = 150;
/** Slow clients started together just before the SIGTERM. */
const SLOW_BATCH = 20;
/** Long connections per route, open from before the new process until after the SIGTERM. */
const LONG_PER_ROUTE = 4;
/** Load stops at the latest this long after it started, whatever happened. */
const MAX_LOAD_MS = 14_000;

/** Server names the clients send, and the route (backend name) each must reach. */
const NAMES = {
  fastApi: ["api.example.com", "API"],
  fastWeb: ["www.example.com", "WEB"],
  slowApi: ["slow.api.example.com", "API"],
  slowWeb: ["slow.example.com", "WEB"],
} as const;
type Kind = keyof typeof NAMES | "long";

/** One client connection's outcome; all but `ok` are losses. */
type Outcome = "ok" | "refused" | "reset" | "misrouted" | "corrupted" | "timedOut";

/** What one run counted, printed as one JSON line by the run inside the namespace. */
interface TlsHandoverResult {
  /** Per client kind, per outcome. */
  readonly counts: Record<Kind, Record<Outcome, number>>;
  /** Access log lines of each process: every connection it closed. */
  readonly oldLines: number;
  readonly newLines: number;
  /** Access log lines whose outcome is not `done` or whose backend does not match the name. */
  readonly badLines: string[];
  /** Slow hellos the old process accepted before its SIGTERM and routed after it. */
  readonly oldSlowAcrossSigterm: number;
  /** New process start to ready, SIGTERM to the old one's exit, the whole load. */
  readonly readyMs: number;
  readonly drainMs: number;
  readonly loadMs: number;
  readonly oldExitCode: number;
}

/** Sends its name, then echoes everything, so a client sees its route and its bytes. */
function startNamedEcho(name: string): TestServer {
  return new TestServer(async (conn) => {
    await writeAll(conn, new TextEncoder().encode(name));
    await copy(conn, conn);
    await conn.closeWrite().catch(() => {});
  });
}

function emptyCounts(): Record<Outcome, number> {
  return { ok: 0, refused: 0, reset: 0, misrouted: 0, corrupted: 0, timedOut: 0 };
}

function outcomeOf(error: unknown): Outcome {
  if (error instanceof Deno.errors.ConnectionRefused) return "refused";
  if (error instanceof Error && error.message.startsWith("Timed out")) return "timedOut";
  return "reset";
}

const equal = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * One client: connects, sends the hello (in `pieces` writes `SLOW_GAP_MS` apart), reads the
 * backend's name and the echoed hello, then closes.
 */
async function helloClient(
  port: number,
  [serverName, route]: readonly [string, string],
  pieces: number,
  onConnected?: () => void,
): Promise<Outcome> {
  let conn: Deno.TcpConn | undefined;
  const attempt = async (): Promise<Outcome> => {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    onConnected?.();
    const hello = buildClientHello({ serverName });
    const size = Math.ceil(hello.length / pieces);
    for (let at = 0; at < hello.length; at += size) {
      if (at > 0) await delay(SLOW_GAP_MS);
      await writeAll(conn, hello.subarray(at, at + size));
    }
    const name = new TextDecoder().decode(await readExactly(conn, route.length));
    if (name !== route) return "misrouted";
    return equal(await readExactly(conn, hello.length), hello) ? "ok" : "corrupted";
  };
  try {
    return await withTimeout(attempt(), CONNECTION_BOUND_MS, `${serverName} client`);
  } catch (error) {
    return outcomeOf(error);
  } finally {
    if (conn !== undefined) closeQuietly(conn);
  }
}

/** A connection open until `until()`: a chunk every 100 ms, each echoed before the next. */
async function longClient(
  port: number,
  [serverName, route]: readonly [string, string],
  until: () => number,
): Promise<Outcome> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const hello = buildClientHello({ serverName });
    await writeAll(conn, hello);
    const name = new TextDecoder().decode(await readExactly(conn, route.length));
    if (name !== route) return "misrouted";
    if (!equal(await readExactly(conn, hello.length), hello)) return "corrupted";
    while (performance.now() < until()) {
      const chunk = randomBytes(512);
      await writeAll(conn, chunk);
      const back = await withTimeout(readExactly(conn, chunk.length), CONNECTION_BOUND_MS, "echo");
      if (!equal(back, chunk)) return "corrupted";
      await delay(100);
    }
    return "ok";
  } catch (error) {
    return outcomeOf(error);
  } finally {
    if (conn !== undefined) closeQuietly(conn);
  }
}

interface AccessLine {
  readonly "@timestamp": string;
  readonly logger: string;
  readonly properties: {
    readonly backend: string;
    readonly outcome: string;
    readonly serverName?: string;
    readonly durationMs: number;
  };
}

function accessLines(stderr: string): AccessLine[] {
  return stderr.split("\n").filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as AccessLine)
    .filter((r) => r.logger === "nautiluslb.access");
}

/** The scenario, run inside the namespace (this file as the main module). */
async function runHandover(): Promise<TlsHandoverResult> {
  await using api = startNamedEcho("API");
  await using web = startNamedEcho("WEB");
  const backendOf: Record<string, string> = {
    API: `127.0.0.1:${api.port}`,
    WEB: `127.0.0.1:${web.port}`,
  };
  const port = freePort();
  const oldAdmin = freePort();
  const newAdmin = freePort();
  const dir = await Deno.makeTempDir({ prefix: "nlb-tls-handover-" });
  const path = `${dir}/config.yaml`;
  await Deno.writeTextFile(
    path,
    `settings:
  adminAddress: "127.0.0.1:${oldAdmin}"
  logLevel: warning
  logFormat: json
  accessLog: true
configurations:
  - name: edge
    listenerAddress: "127.0.0.1:${port}"
    protocol: tls
    drainTimeout: 20s
    healthCheck: { enabled: false }
    tls:
      peekTimeout: 5s
      routes:
        - name: api
          hosts: [api.example.com, slow.api.example.com]
          backends: ["127.0.0.1:${api.port}"]
        - name: web
          hosts: ["*.example.com"]
          backends: ["127.0.0.1:${web.port}"]
`,
  );
  const old = spawnServe(path, oldAdmin);
  let next: ReturnType<typeof spawnServe> | undefined;
  try {
    await waitReady(old);
    const counts = Object.fromEntries(
      [...Object.keys(NAMES), "long"].map((k) => [k, emptyCounts()]),
    ) as Record<Kind, Record<Outcome, number>>;
    const inFlight = new Set<Promise<void>>();
    const track = (kind: Kind, task: Promise<Outcome>) => {
      const done = task.then((outcome) => void counts[kind][outcome]++);
      inFlight.add(done);
      done.finally(() => inFlight.delete(done));
    };
    const start = performance.now();
    let end = start + MAX_LOAD_MS;
    let longEnd = end;
    for (let i = 0; i < LONG_PER_ROUTE; i++) {
      track("long", longClient(port, NAMES.fastApi, () => longEnd));
      track("long", longClient(port, NAMES.fastWeb, () => longEnd));
    }
    const load = (async () => {
      for (let tick = 0; performance.now() < end; tick++) {
        for (let i = 0; i < FAST_PER_TICK; i++) {
          const kind = (tick * FAST_PER_TICK + i) % 2 === 0 ? "fastApi" : "fastWeb";
          track(kind, helloClient(port, NAMES[kind], 1));
        }
        if (tick % SLOW_EVERY_TICKS === 0) {
          const kind = tick % (2 * SLOW_EVERY_TICKS) === 0 ? "slowApi" : "slowWeb";
          track(kind, helloClient(port, NAMES[kind], 3));
        }
        await delay(10);
      }
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    })();

    await delay(1_000);
    const spawnedAt = performance.now();
    next = spawnServe(path, newAdmin, {
      args: ["--handover", "--admin-address", `127.0.0.1:${newAdmin}`],
    });
    await waitReady(next);
    const readyMs = performance.now() - spawnedAt;
    // Slow clients connected (first piece sent or about to be) when the SIGTERM comes.
    let connected = 0;
    for (let i = 0; i < SLOW_BATCH; i++) {
      const kind = i % 2 === 0 ? "slowApi" : "slowWeb";
      track(kind, helloClient(port, NAMES[kind], 3, () => connected++));
    }
    while (connected < SLOW_BATCH && performance.now() < end) await delay(5);
    await delay(50);
    const sigtermAt = Date.now();
    const sigtermPerf = performance.now();
    longEnd = sigtermPerf + 1_000;
    old.child.kill("SIGTERM");
    const exit = await old.child.status;
    const drainMs = performance.now() - sigtermPerf;
    end = Math.min(end, performance.now() + 1_000);
    await load;
    const loadMs = performance.now() - start;
    await old.kill();
    // The new process has written the lines of every connection it closed.
    await delay(200);

    const oldLog = accessLines(old.stderr());
    const newLog = accessLines(next.stderr());
    const badLines = [...oldLog, ...newLog].filter((r) => {
      const name = r.properties.serverName;
      const route = name === "api.example.com" || name === "slow.api.example.com" ? "API" : "WEB";
      return r.properties.outcome !== "done" || r.properties.backend !== backendOf[route];
    }).map((r) => JSON.stringify(r));
    // The old process accepts nothing after its SIGTERM, and a slow client closes a few ms
    // after its last piece: a slow line closed after the SIGTERM was still peeked then.
    const oldSlowAcrossSigterm = oldLog.filter((r) =>
      r.properties.serverName?.startsWith("slow.") === true &&
      Date.parse(r["@timestamp"]) > sigtermAt
    ).length;
    return {
      counts,
      oldLines: oldLog.length,
      newLines: newLog.length,
      badLines,
      oldSlowAcrossSigterm,
      readyMs: Math.round(readyMs),
      drainMs: Math.round(drainMs),
      loadMs: Math.round(loadMs),
      oldExitCode: exit.code,
    };
  } finally {
    await next?.kill();
    await old.kill();
    await Deno.remove(dir, { recursive: true });
  }
}

function kernelAtLeast(release: string, major: number, minor: number): boolean {
  const match = /^(\d+)\.(\d+)/.exec(release);
  if (match === null) return false;
  const [a, b] = [Number(match[1]), Number(match[2])];
  return a > major || (a === major && b >= minor);
}

function whyNot(): string | undefined {
  if (Deno.build.os !== "linux") return "not Linux";
  if (!kernelAtLeast(Deno.osRelease(), 5, 14)) {
    return `kernel ${Deno.osRelease()} has no tcp_migrate_req (needs 5.14)`;
  }
  if (Deno.uid() !== 0) return "not root (ip netns needs it)";
  return undefined;
}

async function run(cmd: readonly string[]): Promise<string> {
  const out = await new Deno.Command(cmd[0]!, { args: cmd.slice(1), stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

if (import.meta.main) {
  console.log(JSON.stringify(await runHandover()));
} else {
  Deno.test({
    name: "tls handover: every ClientHello reaches its route, none lost, across serve --handover",
    ignore: ignoreWithoutNetns("tls handover test", whyNot()),
    fn: async () => {
      const ns = `nlbtlsho${Deno.pid}`;
      await run(["ip", "netns", "add", ns]);
      let r: TlsHandoverResult;
      try {
        await run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
        await run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_migrate_req=1"]);
        const out = await run([
          "ip",
          "netns",
          "exec",
          ns,
          Deno.execPath(),
          "run",
          "-A",
          "--unstable-net",
          new URL(import.meta.url).pathname,
        ]);
        r = JSON.parse(out.trim().split("\n").at(-1)!) as TlsHandoverResult;
      } finally {
        await run(["ip", "netns", "del", ns]).catch(() => {});
      }
      const kinds = Object.entries(r.counts);
      const total = kinds.reduce((n, [, c]) => n + Object.values(c).reduce((a, b) => a + b, 0), 0);
      const ok = kinds.reduce((n, [, c]) => n + c.ok, 0);
      console.log(
        `tls handover: ${total} connections in ${r.loadMs}ms (${
          kinds.map(([k, c]) => `${k} ${c.ok}/${Object.values(c).reduce((a, b) => a + b, 0)}`)
            .join(", ")
        }); old served ${r.oldLines} (${r.oldSlowAcrossSigterm} slow hellos across its SIGTERM), ` +
          `new ${r.newLines}; new ready in ${r.readyMs}ms, old drained in ${r.drainMs}ms; lost ${
            total - ok
          }`,
      );
      for (const [kind, c] of kinds) {
        assert.deepEqual(c, { ...emptyCounts(), ok: c.ok }, `${kind}: ${JSON.stringify(c)}`);
        assert.ok(c.ok > 0, `${kind}: no client ran`);
      }
      assert.equal(r.counts.long.ok, 2 * LONG_PER_ROUTE);
      assert.equal(r.oldExitCode, 0);
      assert.deepEqual(r.badLines, []);
      assert.equal(r.oldLines + r.newLines, total, "every connection in one access log");
      assert.ok(r.newLines > 0, "the new process took connections");
      assert.ok(r.oldSlowAcrossSigterm > 0, "the old process held a slow hello across SIGTERM");
    },
  });
}
