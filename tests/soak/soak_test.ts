/**
 * Soak: the real `serve` CLI under steady, bounded, mixed load while one backend flaps and
 * the pool changes every few seconds through Kubernetes discovery.
 *
 * - Backends are echo processes on distinct loopback addresses (`127.0.0.10`-`14`) sharing one
 *   port: the endpoints of an annotated Service in the fake Kubernetes API server, which
 *   `serve` watches through a kubeconfig (`backendPortName`, `backendMode: endpoints`).
 * - `flap` stays in the EndpointSlice and is killed (SIGKILL) and restarted on the same
 *   address every few seconds; health checks take it out and bring it back.
 * - Every {@linkcode CHURN_MS} one of `p1`-`p4` leaves the pool (its endpoint deleted, not
 *   ready, or terminating, in turn) and the one that left before comes back. Removed backends
 *   keep running: their open connections must drain intact.
 * - {@linkcode WORKERS} client loops; one transfer in four is long (1 MiB stretched over
 *   about 6 s, so pool changes happen under it), the others short (64 KiB).
 *
 * Asserted: no connection lost except to the backend killed on purpose; every pool change
 * shows on `/pools`; no connection opened after a removal showed there lands on the removed
 * backend; descriptors back to the idle baseline once the load stopped and every connection
 * closed; RSS growth under 10 % from the middle of the run to its end.
 *
 * Baselines. Descriptors are compared idle to idle (before the first client, after the last
 * one closed and drained): open connections hold descriptors, so a sample under load says
 * nothing about leaks. RSS is compared under the same load between the middle and the end:
 * the first minutes include JIT compilation and V8 growing its heap towards the working set,
 * which is warm-up rather than a leak, while the second half at steady load should be flat.
 * Under load RSS follows V8's garbage-collection sawtooth (a major GC can move it by 15 % in
 * one sample), so each side is the median of the samples in a window: 40-60 % of the run
 * for the middle, the last 20 % for the end.
 *
 * Duration: `NAUTILUS_SOAK_SECONDS` (default 600, at least 10).
 *
 * @module
 */
import assert from "node:assert/strict";
import { connect, delay, freePort, randomBytes } from "../_helpers.ts";
import { FakeKubeApi, type KubeObject } from "../fake_kube_api.ts";
import {
  BackendProcess,
  configYaml,
  echoTransfer,
  report,
  ServeProcess,
  waitUntil,
} from "../reliability/_harness.ts";

const SECONDS = Number(Deno.env.get("NAUTILUS_SOAK_SECONDS") ?? "600");
/** Concurrent client loops: the steady, bounded load. */
const WORKERS = 8;
/** The flapping backend runs this long, then is down this long. */
const UP_MS = 3_000;
const DOWN_MS = 1_500;
/** A pool change this often. */
const CHURN_MS = 3_000;
/** A client that never got a greeting is the flapping backend's only if it started this close to a kill. */
const KILL_WINDOW_MS = 1_000;
/** Bound for a pool change to show on `/pools`, and for connections to close after the load. */
const SETTLE_MS = 45_000;
const SAMPLE_MS = Math.min(10_000, SECONDS * 50);
/** Figures are printed at the end of the warm-up, at the middle and at the end of the load. */
const WARMUP_S = Math.min(60, SECONDS / 10);
const SHORT_BYTES = 64 * 1024;
const LONG_BYTES = 1024 * 1024;
const LONG_CHUNK_BYTES = 16 * 1024;
const LONG_PAUSE_MS = 100;
/** Descriptors the idle process may hold beyond its idle baseline: keep-alive sockets of the API client. */
const FD_SLACK = 3;

const NAMESPACE = "soak";
const SERVICE = "echo";
const PORT_NAME = "echo";
const POOL = "soak";
const FLAP = { name: "flap", host: "127.0.0.10" } as const;
const CHURNED = [
  { name: "p1", host: "127.0.0.11" },
  { name: "p2", host: "127.0.0.12" },
  { name: "p3", host: "127.0.0.13" },
  { name: "p4", host: "127.0.0.14" },
] as const;
/** How a backend leaves the pool, in turn. */
type Removal = "deleted" | "not-ready" | "terminating";
const REMOVALS: readonly Removal[] = ["deleted", "not-ready", "terminating"];

function service(): KubeObject {
  return {
    kind: "Service",
    metadata: {
      name: SERVICE,
      namespace: NAMESPACE,
      annotations: { "nautiluslb.cloudresty.io/enabled": "true" },
    },
    spec: {
      type: "ClusterIP",
      clusterIP: "10.96.0.20",
      ports: [{ name: PORT_NAME, protocol: "TCP", port: 7000, targetPort: 7000 }],
    },
  };
}

/** The Service's one EndpointSlice: every backend ready except `out`, which left as `removal`. */
function slice(port: number, out: string, removal: Removal): KubeObject {
  const endpoints = [];
  for (const { name, host } of [FLAP, ...CHURNED]) {
    if (name === out && removal === "deleted") continue;
    const conditions = name !== out
      ? { ready: true, serving: true, terminating: false }
      : removal === "not-ready"
      ? { ready: false, serving: false, terminating: false }
      : { ready: false, serving: true, terminating: true };
    endpoints.push({
      addresses: [host],
      conditions,
      nodeName: "node-1",
      targetRef: { kind: "Pod", name: `${SERVICE}-${name}`, namespace: NAMESPACE },
    });
  }
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${SERVICE}-1`,
      namespace: NAMESPACE,
      labels: { "kubernetes.io/service-name": SERVICE },
    },
    addressType: "IPv4",
    ports: [{ name: PORT_NAME, port, protocol: "TCP" }],
    endpoints,
  };
}

/** A spell out of the pool: issued (slice written), seen on `/pools`, back (re-add issued). */
interface OutSpell {
  readonly issuedAt: number;
  observedAt: number;
  backAt: number;
}

/** One finished client connection. */
interface Done {
  readonly backend: string;
  readonly startedAt: number;
  readonly endedAt: number;
}

/** Process figures: descriptors and RSS. */
interface ProcessFigures {
  readonly fds: number;
  readonly rssKiB: number;
}

/** Lowest of a few samples: health probes briefly hold descriptors. */
async function idleFigures(serve: ServeProcess): Promise<ProcessFigures> {
  let fds = Infinity;
  for (let i = 0; i < 5; i++) {
    fds = Math.min(fds, serve.fdCount());
    await delay(200);
  }
  return { fds, rssKiB: serve.rssKiB() };
}

/** Why a connection failed, in a few words. */
function causeOf(error: unknown): string {
  if (error instanceof assert.AssertionError) return "checksum";
  if (!(error instanceof Error)) return "unknown";
  if (error.message.startsWith("Echo ended early")) return "ended-early";
  if (error.message.startsWith("Received more")) return "too-many-bytes";
  return error.name === "Error" ? error.message.slice(0, 60) : error.name;
}

/** Median, lowest and highest RSS of the samples taken from `fromS` to `toS` into the load. */
function window(
  series: readonly { readonly atS: number; readonly rssKiB: number }[],
  fromS: number,
  toS: number,
): { samples: number; median: number; min: number; max: number } {
  const values = series.filter((s) => s.atS >= fromS && s.atS <= toS).map((s) => s.rssKiB)
    .sort((a, b) => a - b);
  return {
    samples: values.length,
    median: values[Math.floor(values.length / 2)] ?? NaN,
    min: values[0] ?? NaN,
    max: values.at(-1) ?? NaN,
  };
}

function increment(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

Deno.test({
  name: `soak: mixed load for ${SECONDS}s while a backend flaps and the pool changes`,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    assert.ok(Number.isFinite(SECONDS) && SECONDS >= 10, "NAUTILUS_SOAK_SECONDS must be >= 10");
    let flap = await BackendProcess.start(FLAP.name, FLAP.host);
    const backendPort = flap.port;
    const churned: BackendProcess[] = [];
    const fake = await FakeKubeApi.start();
    let serve: ServeProcess | undefined;
    try {
      for (const { name, host } of CHURNED) {
        churned.push(await BackendProcess.start(name, host, backendPort));
      }
      const keyOf = (name: string) =>
        `${[FLAP, ...CHURNED].find((b) => b.name === name)!.host}:${backendPort}`;
      fake.upsert(service());
      let out: string = CHURNED[3].name;
      fake.upsert(slice(backendPort, out, "deleted"));
      const adminPort = freePort();
      const port = freePort();
      serve = await ServeProcess.start(
        configYaml(adminPort, [{
          name: POOL,
          port,
          backends: [],
          extra: {
            backendPortName: PORT_NAME,
            namespace: NAMESPACE,
            backendMode: "endpoints",
            balancer: "least_connections",
            connectTimeout: "500ms",
            requestTimeout: "3s",
            idleTimeout: "30s",
            drainTimeout: "30s",
          },
          healthCheck: { interval: "500ms", timeout: "300ms", rise: 2, fall: 2 },
        }], { kubeconfigPath: JSON.stringify(await fake.kubeconfig()) }),
        adminPort,
      );
      const live = serve;
      const inPool = [FLAP.name, ...CHURNED.map((b) => b.name).filter((n) => n !== out)];
      await waitUntil(
        async () => {
          const backends = await live.backends(POOL);
          return inPool.every((n) =>
            backends.some((b) => b.key === keyOf(n) && b.health === "healthy" && !b.isDraining)
          );
        },
        `every backend of the first EndpointSlice healthy on /pools`,
        SETTLE_MS,
      );
      const idleBefore = await idleFigures(live);

      const startedAt = performance.now();
      const deadline = startedAt + SECONDS * 1_000;
      const kills: number[] = [];
      const spells = new Map<string, OutSpell[]>(CHURNED.map((b) => [b.name, []]));
      spells.get(out)!.push({ issuedAt: startedAt, observedAt: startedAt, backAt: Infinity });
      let poolChanges = 0;
      const poolChangeMs: number[] = [];
      const poolChangeFailures: string[] = [];
      const done: Done[] = [];
      const counts = { short: 0, long: 0, bytesSent: 0, bytesReceived: 0 };
      const perBackend: Record<string, number> = {};
      const lostToFlap: Record<string, number> = {};
      const lostOther: Record<string, number> = {};
      const lostDetails: string[] = [];

      const flapping = (async () => {
        while (performance.now() < deadline) {
          await delay(UP_MS);
          kills.push(performance.now());
          await flap.kill("SIGKILL");
          await delay(DOWN_MS);
          flap = await BackendProcess.start(FLAP.name, FLAP.host, backendPort);
        }
      })();

      const churning = (async () => {
        for (let step = 0;; step++) {
          await delay(CHURN_MS);
          if (performance.now() >= deadline) break;
          const back = out;
          const leaving = CHURNED[step % CHURNED.length]!.name;
          const removal = REMOVALS[step % REMOVALS.length]!;
          const issuedAt = performance.now();
          fake.upsert(slice(backendPort, leaving, removal));
          out = leaving;
          spells.get(back)!.at(-1)!.backAt = issuedAt;
          const spell: OutSpell = { issuedAt, observedAt: Infinity, backAt: Infinity };
          spells.get(leaving)!.push(spell);
          poolChanges++;
          try {
            poolChangeMs.push(
              await waitUntil(
                async () => {
                  const backends = await live.backends(POOL);
                  const gone = backends.find((b) => b.key === keyOf(leaving));
                  const returned = backends.find((b) => b.key === keyOf(back));
                  return (gone === undefined || gone.isDraining) &&
                    returned !== undefined && !returned.isDraining;
                },
                `${leaving} out (${removal}) and ${back} back on /pools`,
                SETTLE_MS,
              ),
            );
            spell.observedAt = performance.now();
          } catch (error) {
            poolChangeFailures.push(String(error));
          }
        }
      })();

      const payloads = { short: randomBytes(SHORT_BYTES), long: randomBytes(LONG_BYTES) };
      const workers = Array.from({ length: WORKERS }, async (_, w) => {
        for (let i = 0; performance.now() < deadline; i++) {
          const kind = (i + w) % 4 === 0 ? "long" : "short";
          const began = performance.now();
          let backend = "";
          try {
            const result = await echoTransfer(await connect(port), payloads[kind], {
              ...(kind === "long" && { chunkBytes: LONG_CHUNK_BYTES, pauseMs: LONG_PAUSE_MS }),
              onGreeting: (name) => backend = name,
            });
            assert.equal(result.receivedSha, result.sentSha, `checksum via ${result.backend}`);
            counts[kind]++;
            counts.bytesSent += payloads[kind].length;
            counts.bytesReceived += result.bytes;
            increment(perBackend, backend);
            done.push({ backend, startedAt: began, endedAt: performance.now() });
          } catch (error) {
            const cause = causeOf(error);
            const nearKill = kills.some((k) => Math.abs(k - began) < KILL_WINDOW_MS);
            if (backend === FLAP.name || (backend === "" && nearKill)) {
              increment(lostToFlap, cause);
            } else {
              increment(lostOther, cause);
              if (lostDetails.length < 20) {
                lostDetails.push(`${kind} via ${backend || "no greeting"}: ${error}`);
              }
            }
          }
        }
      });

      const losses = () => ({
        toFlap: { ...lostToFlap },
        unintended: { ...lostOther },
      });
      const figures = async (phase: string) => {
        const f = {
          atS: Math.round((performance.now() - startedAt) / 1_000),
          connections: { short: counts.short, long: counts.long },
          bytes: { sent: counts.bytesSent, received: counts.bytesReceived },
          serveBytes: {
            fromClients: await live.metric("nautiluslb_listener_bytes_total", {
              direction: "from_client",
            }),
            toClients: await live.metric("nautiluslb_listener_bytes_total", {
              direction: "to_client",
            }),
          },
          losses: losses(),
          flapKills: kills.length,
          poolChanges,
          fds: live.fdCount(),
          rssKiB: live.rssKiB(),
        };
        report(`soak ${phase}`, f);
        return f;
      };

      const rssSeries: { readonly atS: number; readonly rssKiB: number }[] = [];
      let atStart: Awaited<ReturnType<typeof figures>> | undefined;
      let atMiddle: Awaited<ReturnType<typeof figures>> | undefined;
      let atEnd: Awaited<ReturnType<typeof figures>> | undefined;
      const sampling = (async () => {
        while (true) {
          const left = deadline - performance.now();
          await delay(Math.max(0, Math.min(SAMPLE_MS, left - 50)));
          const atS = (performance.now() - startedAt) / 1_000;
          rssSeries.push({ atS, rssKiB: live.rssKiB() });
          if (!atStart && atS >= WARMUP_S) atStart = await figures("start");
          else if (!atMiddle && atS >= SECONDS / 2) atMiddle = await figures("middle");
          if (deadline - performance.now() <= 100) {
            atEnd = await figures("end");
            return;
          }
        }
      })();

      await sampling;
      await Promise.all([...workers, churning, flapping]);
      // Load stopped: every connection must close and every removed backend finish draining.
      await waitUntil(
        async () =>
          (await live.metric("nautiluslb_listener_connections_active")) === 0 &&
          (await live.backends(POOL)).every((b) => !b.isDraining && b.activeConnections === 0),
        "no open connection and nothing draining after the load",
        SETTLE_MS,
      );
      await delay(2_000);
      const idleAfter = await idleFigures(live);

      const misrouted = done.filter((d) =>
        spells.get(d.backend)?.some((s) =>
          d.startedAt > s.observedAt && d.startedAt < s.backAt
        )
      ).length;
      const drainedIntact = done.filter((d) =>
        spells.get(d.backend)?.some((s) => d.startedAt < s.issuedAt && d.endedAt > s.observedAt)
      ).length;
      const sortedChangeMs = [...poolChangeMs].sort((a, b) => a - b);
      const rssMiddle = window(rssSeries, 0.4 * SECONDS, 0.6 * SECONDS);
      const rssEnd = window(rssSeries, 0.8 * SECONDS, SECONDS);
      const accepted = await live.metric("nautiluslb_listener_connections_accepted_total");
      report("soak summary", {
        seconds: SECONDS,
        workers: WORKERS,
        connections: { short: counts.short, long: counts.long, accepted },
        perBackend,
        losses: losses(),
        flapKills: kills.length,
        poolChanges,
        poolChangeMs: {
          median: Math.round(sortedChangeMs[Math.floor(sortedChangeMs.length / 2)] ?? 0),
          max: Math.round(sortedChangeMs.at(-1) ?? 0),
        },
        drainedIntact,
        misrouted,
        idleBefore,
        idleAfter,
        rssKiB: {
          start: atStart?.rssKiB,
          middle: atMiddle?.rssKiB,
          end: atEnd?.rssKiB,
          middleWindow: rssMiddle,
          endWindow: rssEnd,
          growthPercent: Math.round((rssEnd.median / rssMiddle.median - 1) * 1000) / 10,
        },
        rssSeriesKiB: rssSeries.map((s) => s.rssKiB),
      });

      assert.deepEqual(lostDetails, [], "connections lost that were not on the flapping backend");
      assert.deepEqual(lostOther, {});
      assert.deepEqual(poolChangeFailures, [], "pool changes that never showed on /pools");
      assert.ok(poolChanges > 0, "the pool never changed");
      assert.equal(misrouted, 0, "connections opened after a removal showed landed on it");
      assert.ok(counts.short > 0 && counts.long > 0, "both kinds of connection completed");
      for (const { name } of CHURNED) assert.ok((perBackend[name] ?? 0) > 0, `${name} got none`);
      if (SECONDS >= 60) {
        assert.ok(drainedIntact > 0, "no connection outlived its backend's removal");
      }
      assert.ok(
        idleAfter.fds <= idleBefore.fds + FD_SLACK,
        `descriptors grew: ${idleBefore.fds} idle before, ${idleAfter.fds} idle after`,
      );
      assert.ok(atStart && atMiddle && atEnd, "start, middle and end figures taken");
      assert.ok(rssMiddle.samples > 0 && rssEnd.samples > 0, "RSS sampled in both windows");
      assert.ok(
        rssEnd.median < rssMiddle.median * 1.1,
        `RSS grew by 10 % or more: median ${rssMiddle.median} KiB around the middle, ` +
          `${rssEnd.median} KiB at the end`,
      );
    } finally {
      await serve?.stop();
      await Promise.all([...churned, flap].map((b) => b.kill()));
      await fake.close();
    }
  },
});
