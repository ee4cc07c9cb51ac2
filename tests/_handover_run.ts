/**
 * One handover under load, run by `handover_test.ts` inside a network namespace: an echo
 * backend, `serve` (old), steady new connections plus long streams, then
 * `scripts/handover.sh` starts a new `serve --handover` on the same reusePort listener, waits for its
 * `/readyz` and stops the old one. Prints one JSON line of counts to stdout.
 *
 * Usage: deno run -A --unstable-net tests/_handover_run.ts RATE MAX_SECONDS STREAMS
 *
 * Load runs from before the handover until 1 s after the old process exited, at most
 * MAX_SECONDS.
 *
 * @module
 */
import {
  closeQuietly,
  delay,
  freePort,
  randomBytes,
  readAll,
  readExactly,
  sha256Hex,
  startEcho,
  withTimeout,
  writeAll,
} from "./_helpers.ts";
import { spawnServe, waitReady } from "./_serve_process.ts";

/** What one run counted. */
export interface HandoverResult {
  /** Short connections started. */
  readonly attempted: number;
  /** Short connections whose echo came back whole. */
  readonly ok: number;
  /** Refused at connect (no listener took it). */
  readonly refused: number;
  /** Reset, or closed before the echo. */
  readonly reset: number;
  /** Took longer than the per-connection bound. */
  readonly timedOut: number;
  /** Long streams whose bytes came back whole / not. */
  readonly streamsOk: number;
  readonly streamsBad: number;
  /** From starting the new process to the old one's exit. */
  readonly handoverMs: number;
  /** How long the short-connection load ran. */
  readonly loadMs: number;
  /** Exit code of the handover script. */
  readonly scriptCode: number;
}

/**
 * A short connection that takes longer counts as lost. Generous: a SYN dropped by a full
 * backlog on a busy machine is sent again by the client's kernel after 1 s, 3 s and 7 s,
 * which delays the connection but does not lose it.
 */
const CONNECTION_BOUND_MS = 15_000;
const ROOT = new URL("../", import.meta.url);

async function shortConnection(port: number): Promise<"ok" | "refused" | "reset" | "timeout"> {
  let conn: Deno.TcpConn | undefined;
  const attempt = async () => {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const sent = randomBytes(16);
    await writeAll(conn, sent);
    const got = await readExactly(conn, sent.length);
    return got.every((b, i) => b === sent[i]) ? "ok" as const : "reset" as const;
  };
  try {
    return await withTimeout(attempt(), CONNECTION_BOUND_MS, "short connection");
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) return "refused";
    if (error instanceof Error && error.message.startsWith("Timed out")) return "timeout";
    return "reset";
  } finally {
    if (conn !== undefined) closeQuietly(conn);
  }
}

async function longStream(port: number, until: () => number): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const chunks: Uint8Array[] = [];
    const reading = readAll(conn);
    while (performance.now() < until()) {
      const chunk = randomBytes(4096);
      chunks.push(chunk);
      await writeAll(conn, chunk);
      await delay(50);
    }
    await conn.closeWrite();
    const got = await withTimeout(reading, 30_000, "stream echo");
    const sent = new Uint8Array(chunks.length * 4096);
    chunks.forEach((c, i) => sent.set(c, i * 4096));
    return got.length === sent.length && await sha256Hex(got) === await sha256Hex(sent);
  } catch {
    return false;
  } finally {
    if (conn !== undefined) closeQuietly(conn);
  }
}

async function main(): Promise<void> {
  const [rate = 1000, maxSeconds = 30, streamCount = 50] = Deno.args.map(Number);
  await using echo = startEcho();
  const port = freePort();
  const oldAdmin = freePort();
  const newAdmin = freePort();
  const dir = await Deno.makeTempDir();
  const path = `${dir}/config.yaml`;
  await Deno.writeTextFile(
    path,
    `settings:
  adminAddress: "127.0.0.1:${oldAdmin}"
  logLevel: warning
configurations:
  - name: web
    listenerAddress: "127.0.0.1:${port}"
    drainTimeout: 60s
    maxConnections: 0
    healthCheck: { enabled: false }
    backends: ["127.0.0.1:${echo.port}"]
`,
  );
  const old = spawnServe(path, oldAdmin);
  const pidFile = `${dir}/new.pid`;
  let newPid: number | undefined;
  try {
    await waitReady(old);
    const start = performance.now();
    let end = start + maxSeconds * 1000;
    // Streams run across the SIGTERM and end during the old process's drain.
    let streamsEnd = end;
    const streams = Array.from({ length: streamCount }, () => longStream(port, () => streamsEnd));
    const counts = { attempted: 0, ok: 0, refused: 0, reset: 0, timeout: 0 };
    const inFlight = new Set<Promise<void>>();
    const load = (async () => {
      const perTick = Math.max(1, Math.round(rate / 100));
      while (performance.now() < end) {
        for (let i = 0; i < perTick; i++) {
          counts.attempted++;
          const task = shortConnection(port).then((outcome) => {
            counts[outcome]++;
          });
          inFlight.add(task);
          task.finally(() => inFlight.delete(task));
        }
        await delay(10);
      }
      await Promise.all(inFlight);
    })();
    await delay(1_000);
    const t0 = performance.now();
    // Status, not output: the new process inherits the script's stdio and outlives it.
    const script = new Deno.Command("bash", {
      args: [
        new URL("scripts/handover.sh", ROOT).pathname,
        String(old.child.pid),
        `127.0.0.1:${newAdmin}`,
        "--",
        Deno.execPath(),
        "run",
        "-A",
        "--unstable-net",
        new URL("src/main.ts", ROOT).pathname,
        "serve",
        "--handover",
        "-c",
        path,
        "--admin-address",
        `127.0.0.1:${newAdmin}`,
      ],
      env: { NEW_PID_FILE: pidFile, EXIT_TIMEOUT: "60" },
      stdout: "null",
      stderr: "inherit",
    }).spawn().status;
    const watchReady = (async () => {
      while (performance.now() < end) {
        try {
          const res = await fetch(`http://127.0.0.1:${newAdmin}/readyz`, {
            signal: AbortSignal.timeout(1_000),
          });
          await res.body?.cancel();
          if (res.ok) break;
        } catch {
          // not up yet
        }
        await delay(50);
      }
      streamsEnd = Math.min(streamsEnd, performance.now() + 1_500);
    })();
    await old.child.status;
    await watchReady;
    const handoverMs = performance.now() - t0;
    end = Math.min(end, performance.now() + 1_000);
    newPid = Number((await Deno.readTextFile(pidFile)).trim());
    await load;
    const loadMs = Math.round(performance.now() - start);
    const streamResults = await Promise.all(streams);
    const result: HandoverResult = {
      attempted: counts.attempted,
      ok: counts.ok,
      refused: counts.refused,
      reset: counts.reset,
      timedOut: counts.timeout,
      streamsOk: streamResults.filter((ok) => ok).length,
      streamsBad: streamResults.filter((ok) => !ok).length,
      handoverMs: Math.round(handoverMs),
      loadMs,
      scriptCode: (await script).code,
    };
    console.log(JSON.stringify(result));
    if ((await script).code !== 0) console.error(old.stderr());
  } finally {
    if (newPid === undefined) {
      try {
        newPid = Number((await Deno.readTextFile(pidFile)).trim());
      } catch {
        // never started
      }
    }
    if (newPid !== undefined && newPid > 0) {
      try {
        Deno.kill(newPid, "SIGKILL");
      } catch {
        // exited
      }
    }
    await old.kill();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
