/**
 * Soak: the real `serve` CLI under steady, bounded, mixed load (short and long transfers)
 * while one backend flaps (killed and restarted on the same port every few seconds).
 * At the end: no connection lost except those the flapping backend took down with it, no
 * descriptor growth, RSS growth under 10 %. Duration: `NAUTILUS_SOAK_SECONDS` (default 600).
 *
 * @module
 */
import assert from "node:assert/strict";
import { connect, delay, freePort, randomBytes } from "../_helpers.ts";
import {
  BackendProcess,
  configYaml,
  echoTransfer,
  report,
  ServeProcess,
} from "../reliability/_harness.ts";

const SECONDS = Number(Deno.env.get("NAUTILUS_SOAK_SECONDS") ?? "600");
const WORKERS = 8;
const UP_MS = 3_000;
const DOWN_MS = 1_500;
/** A client that never got a greeting is the flapping backend's only if it started this close to a kill. */
const KILL_WINDOW_MS = 1_000;

interface Sample {
  readonly atS: number;
  readonly fds: number;
  readonly rssKiB: number;
  readonly connections: number;
  readonly bytes: number;
}

Deno.test({
  name: `soak: mixed load for ${SECONDS}s while a backend flaps`,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    assert.ok(Number.isFinite(SECONDS) && SECONDS >= 10, "NAUTILUS_SOAK_SECONDS must be >= 10");
    const stable = await Promise.all(["s0", "s1"].map((n) => BackendProcess.start(n)));
    let flap = await BackendProcess.start("flap");
    const flapPort = flap.port;
    const adminPort = freePort();
    const port = freePort();
    const serve = await ServeProcess.start(
      configYaml(adminPort, [{
        name: "soak",
        port,
        backends: [...stable.map((b) => b.key), flap.key],
        extra: {
          balancer: "least_connections",
          connectTimeout: "500ms",
          requestTimeout: "3s",
          idleTimeout: "30s",
        },
        healthCheck: { interval: "500ms", timeout: "300ms", rise: 2, fall: 2 },
      }]),
      adminPort,
    );
    const startedAt = performance.now();
    const deadline = startedAt + SECONDS * 1_000;
    const kills: number[] = [];
    let connections = 0;
    let bytes = 0;
    const lost: string[] = [];
    let lostToFlap = 0;
    const samples: Sample[] = [];
    const sample = () =>
      samples.push({
        atS: Math.round((performance.now() - startedAt) / 1_000),
        fds: serve.fdCount(),
        rssKiB: serve.rssKiB(),
        connections,
        bytes,
      });
    try {
      const flapping = (async () => {
        while (performance.now() < deadline) {
          await delay(UP_MS);
          kills.push(performance.now());
          await flap.kill("SIGKILL");
          await delay(DOWN_MS);
          flap = await BackendProcess.start("flap", "127.0.0.1", flapPort);
        }
      })();
      const short = randomBytes(64 * 1024);
      const long = randomBytes(1024 * 1024);
      const workers = Array.from({ length: WORKERS }, async (_, w) => {
        for (let i = 0; performance.now() < deadline; i++) {
          const isLong = (i + w) % 4 === 0;
          const began = performance.now();
          let backend = "";
          try {
            const result = await echoTransfer(await connect(port), isLong ? long : short, {
              ...(isLong && { chunkBytes: 16 * 1024, pauseMs: 20 }),
              onGreeting: (name) => backend = name,
            });
            assert.equal(result.receivedSha, result.sentSha, `checksum via ${result.backend}`);
            connections++;
            bytes += result.bytes;
          } catch (error) {
            const nearKill = kills.some((k) => Math.abs(k - began) < KILL_WINDOW_MS);
            if (backend === "flap" || (backend === "" && nearKill)) {
              lostToFlap++;
            } else {
              lost.push(`${backend || "no greeting"}: ${error}`);
            }
          }
        }
      });
      // Steady state first, then the baseline.
      await delay(Math.min(10_000, SECONDS * 100));
      sample();
      const middle = setTimeout(sample, Math.max(0, (deadline - performance.now()) / 2));
      await Promise.all(workers);
      clearTimeout(middle);
      await flapping;
      await delay(2_000);
      sample();

      const first = samples[0];
      const last = samples.at(-1);
      report("soak", {
        seconds: SECONDS,
        connections,
        bytesEachWay: bytes,
        flapKills: kills.length,
        lostToFlap,
        lost: lost.length,
        samples,
      });
      assert.deepEqual(lost, [], "connections lost that were not on the flapping backend");
      assert.ok(connections > 0);
      assert.ok(last!.fds <= first!.fds + 5, `descriptors grew: ${first!.fds} -> ${last!.fds}`);
      assert.ok(
        last!.rssKiB < first!.rssKiB * 1.1,
        `RSS grew by 10 % or more: ${first!.rssKiB} KiB -> ${last!.rssKiB} KiB`,
      );
    } finally {
      await serve.stop();
      await Promise.all([...stable, flap].map((b) => b.kill()));
    }
  },
});
