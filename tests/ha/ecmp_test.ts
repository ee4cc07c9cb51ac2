/**
 * Active/active: both instances announce the address over BGP (BIRD, `deploy/bgp/`) to a
 * router that installs one route with two next hops (ECMP); `nautiluslb-bgp-health.sh`
 * withdraws an instance's route when its `/readyz` fails. 256 client source addresses:
 * - both instances carry a share between 40/60 and 60/40;
 * - every client reaches the same backend through either instance (one Maglev seed);
 * - SIGTERM on one instance (shutdownDelay per the rule) withdraws its route: only its
 *   flows move, the survivor's open connections see no reset, every client still reaches
 *   the backend it had.
 * Five runs; `[measure]` lines carry the shares and the withdrawal times.
 *
 * Needs root, bird2 and curl (scripts/ha_install.sh); skips with one notice line otherwise,
 * unless `NAUTILUS_HA_REQUIRED=1`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { report } from "../reliability/_harness.ts";
import { delay, waitUntil } from "../_helpers.ts";
import {
  CLIENT_SOURCES,
  ECMP_VIP,
  ignoreHa,
  INSTANCE_ADDRESS,
  type InstanceName,
  Lab,
  REPO_ROOT,
} from "./_lab.ts";
import { ADMIN_PORT, Instance, LISTEN_PORT, serveConfig, startBackends } from "./_instances.ts";
import { Bird, BIRD_ROUTER_VALUES, birdInstanceValues, Daemon } from "./_daemons.ts";
import {
  type Attempt,
  clientOnce,
  Holder,
  type Outage,
  outageOf,
  p50Max,
  Probe,
  RUNS,
} from "./_traffic.ts";

/** The timing rule of deploy/bgp: 0.2 s x fall 2 + 0.1 s route update + 1 s margin. */
const SHUTDOWN_DELAY = "1.5s";

/**
 * The holders' client ports, one per holder, below the ephemeral range: a connection the
 * router moved to the other instance stays established on the one it left (its client saw
 * the reset elsewhere), and a later holder's ephemeral port could repeat its four-tuple.
 */
const HOLDER_PORT_BASE = 20_000;

/** Next hops of the router's route to the address. */
async function nextHops(lab: Lab): Promise<string[]> {
  const out = await lab.exec("router", ["ip", "-4", "route", "show", `${ECMP_VIP}/32`]);
  return [...out.matchAll(/via (\S+)/g)].map((m) => m[1]!).sort();
}

/**
 * Client addresses of `connections` established on `name`'s listener, from `ss` (matched
 * by address and port: connections reset at the client may linger on the instance; each
 * holder's own client port keeps those from matching).
 */
async function peersOf(
  lab: Lab,
  name: InstanceName,
  connections: readonly Attempt[],
): Promise<Set<string>> {
  const wanted = new Set(connections.map((c) => `${c.source}:${c.localPort}`));
  const out = await lab.exec(name, [
    "ss",
    "-Htn",
    "state",
    "established",
    `( sport = :${LISTEN_PORT} )`,
  ]);
  const peers = new Set<string>();
  for (const line of out.split("\n")) {
    const fields = line.trim().split(/\s+/);
    const peer = fields.at(-1);
    if (peer && wanted.has(peer)) peers.add(peer.slice(0, peer.lastIndexOf(":")));
  }
  return peers;
}

/**
 * Whether the router's kernel has resilient next-hop groups (Linux 5.13+). BIRD 2.0 installs
 * plain multipath routes (hash-threshold), so the suite only reports it.
 */
async function resilientGroupsSupported(lab: Lab): Promise<boolean> {
  try {
    await lab.exec("router", [
      "ip",
      "nexthop",
      "add",
      "id",
      "901",
      "via",
      INSTANCE_ADDRESS.a,
      "dev",
      "eth0",
    ]);
    await lab.exec("router", [
      "ip",
      "nexthop",
      "add",
      "id",
      "902",
      "via",
      INSTANCE_ADDRESS.b,
      "dev",
      "eth0",
    ]);
    await lab.exec("router", [
      "ip",
      "nexthop",
      "add",
      "id",
      "900",
      "group",
      "901/902",
      "type",
      "resilient",
      "buckets",
      "64",
    ]);
    return true;
  } catch {
    return false;
  } finally {
    for (const id of ["900", "901", "902"]) {
      await lab.exec("router", ["ip", "nexthop", "del", "id", id]).catch(() => {});
    }
  }
}

Deno.test({
  name: "BGP + ECMP pair: shares, one Maglev seed, a withdrawal moves only its own flows",
  ignore: ignoreHa(),
}, async () => {
  await using lab = await Lab.create();
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb_ha_" });
  const backends = await startBackends(lab, 3);
  const config = serveConfig(backends.map((b) => b.key), SHUTDOWN_DELAY);
  await Deno.mkdir(`${dir}/a`);
  await Deno.mkdir(`${dir}/b`);
  const instances = {
    a: new Instance(lab, "a", `${dir}/a`, config),
    b: new Instance(lab, "b", `${dir}/b`, config),
  };
  const daemons: (Bird | Daemon)[] = [];
  try {
    await Promise.all([instances.a.start(), instances.b.start()]);
    daemons.push(
      await Bird.start(lab, "router", dir, "deploy/bgp/bird-router.conf.tmpl", BIRD_ROUTER_VALUES),
    );
    for (const name of ["a", "b"] as const) {
      const bird = await Bird.start(
        lab,
        name,
        dir,
        "deploy/bgp/bird-instance.conf.tmpl",
        birdInstanceValues(name),
      );
      daemons.push(bird);
      daemons.push(
        new Daemon([
          ...lab.prefix(name),
          "env",
          `NLB_READYZ_URL=http://127.0.0.1:${ADMIN_PORT}/readyz`,
          `NLB_BIRDC=${bird.birdc.join(" ")}`,
          `${REPO_ROOT}deploy/bgp/nautiluslb-bgp-health.sh`,
        ], `${dir}/bgp-health-${name}.log`),
      );
    }
    const both = [INSTANCE_ADDRESS.a, INSTANCE_ADDRESS.b].sort();
    const logs = () =>
      daemons.map((d) => {
        const daemon = d instanceof Bird ? d.daemon : d;
        return `--- ${daemon.logPath}:\n${daemon.log().split("\n").slice(-8).join("\n")}`;
      }).join("\n");
    await waitUntil(
      async () => (await nextHops(lab)).join() === both.join(),
      `two next hops on the router\n${logs()}`,
      30_000,
    );

    // Every source through each instance directly: the same backend, whichever one.
    const direct = await clientOnce<{ results: Attempt[] }>(lab, [
      "once",
      `${INSTANCE_ADDRESS.a},${INSTANCE_ADDRESS.b}`,
      String(LISTEN_PORT),
      "3000",
      ...CLIENT_SOURCES,
    ]);
    const backendOf = new Map<string, string>();
    for (const r of direct.results) {
      assert.ok(r.ok, `direct connection failed: ${JSON.stringify(r)}`);
      const seen = backendOf.get(r.source!);
      if (seen !== undefined) {
        assert.equal(r.backend, seen, `${r.source} reached two backends through a and b`);
      }
      backendOf.set(r.source!, r.backend!);
    }

    const shares: number[] = [];
    const withdrawMs: number[] = [];
    const moved: number[] = [];
    const movedBack: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const holder = new Holder(lab, ECMP_VIP, CLIENT_SOURCES, HOLDER_PORT_BASE + 2 * run);
      try {
        const opened = await holder.opened();
        assert.ok(opened.every((o) => o.ok), JSON.stringify(opened.filter((o) => !o.ok)));
        for (const o of opened) {
          assert.equal(o.backend, backendOf.get(o.source!), `${o.source}: backend through ECMP`);
        }
        const onA = await peersOf(lab, "a", opened);
        const onB = await peersOf(lab, "b", opened);
        assert.equal(
          onA.size + onB.size,
          CLIENT_SOURCES.length,
          `every connection on a or b: ${onA.size} + ${onB.size}`,
        );
        const share = onA.size / CLIENT_SOURCES.length;
        shares.push(share);
        assert.ok(share >= 0.4 && share <= 0.6, `a's share ${share}: not within 40/60`);

        // Withdraw one instance: SIGTERM, so /readyz fails while it still accepts.
        const leaving: InstanceName = run % 2 === 0 ? "a" : "b";
        const staying: InstanceName = leaving === "a" ? "b" : "a";
        const survivors = leaving === "a" ? onB : onA;
        const started = performance.now();
        instances[leaving].serve!.kill("SIGTERM");
        withdrawMs.push(Math.round(
          await waitUntil(
            async () => (await nextHops(lab)).join() === INSTANCE_ADDRESS[staying],
            `the route of ${leaving} withdrawn\n${logs()}`,
            10_000,
          ),
        ));
        assert.ok(performance.now() - started < 1_500, "withdrawn before shutdownDelay ends");
        const checked = await holder.check();
        const survivorResets = checked.filter((c) => survivors.has(c.source!) && !c.ok);
        assert.deepEqual(survivorResets, [], "the survivor's connections see no reset");
        const movedFailed = checked.filter((c) => !survivors.has(c.source!) && !c.ok).length;
        moved.push(movedFailed);
        // Every client still reaches its backend, now all through the survivor.
        const accepted = () =>
          instances[staying].serve!.metric("nautiluslb_listener_connections_accepted_total");
        const acceptedBefore = await accepted();
        const after = await clientOnce<{ results: Attempt[] }>(lab, [
          "once",
          ECMP_VIP,
          String(LISTEN_PORT),
          "3000",
          ...CLIENT_SOURCES,
        ]);
        for (const r of after.results) {
          assert.ok(r.ok, `after the withdrawal: ${JSON.stringify(r)}`);
          assert.equal(r.backend, backendOf.get(r.source!), `${r.source}: backend after the move`);
        }
        assert.equal(
          await accepted() - acceptedBefore,
          CLIENT_SOURCES.length,
          "every new connection went to the survivor",
        );

        // While one is away, every client opens a connection on the survivor; when the other
        // returns, the router hands its half of the hash space back: those connections move.
        const during = new Holder(lab, ECMP_VIP, CLIENT_SOURCES, HOLDER_PORT_BASE + 2 * run + 1);
        try {
          assert.ok((await during.opened()).every((o) => o.ok));
          await instances[leaving].kill("SIGTERM");
          await instances[leaving].start();
          await waitUntil(
            async () => (await nextHops(lab)).join() === both.join(),
            `${leaving} announced again\n${logs()}`,
            15_000,
          );
          const back = await during.check();
          assert.deepEqual(
            back.filter((c) => survivors.has(c.source!) && !c.ok),
            [],
            "the return leaves the survivor's own flows alone",
          );
          movedBack.push(back.filter((c) => !c.ok).length);
        } finally {
          await during.close();
        }
      } finally {
        await holder.close();
      }
    }
    // Unplanned: SIGKILL of one instance; its share fails until the route is withdrawn.
    const killed: Outage[] = [];
    for (let run = 0; run < RUNS; run++) {
      const victim: InstanceName = run % 2 === 0 ? "a" : "b";
      const survivor: InstanceName = victim === "a" ? "b" : "a";
      const probe = new Probe(lab, ECMP_VIP, CLIENT_SOURCES);
      let faultAt = Date.now();
      let failure: unknown;
      try {
        await probe.warmUp();
        faultAt = Date.now();
        await instances[victim].kill("SIGKILL");
        await waitUntil(
          async () => (await nextHops(lab)).join() === INSTANCE_ADDRESS[survivor],
          `the route of the killed ${victim} withdrawn\n${logs()}`,
          10_000,
        );
        await delay(1_500);
      } catch (error) {
        failure = error;
      }
      const attempts = await probe.stop();
      if (failure !== undefined) throw failure;
      killed.push(outageOf(attempts, faultAt));
      await instances[victim].start();
      await waitUntil(
        async () => (await nextHops(lab)).join() === both.join(),
        `${victim} announced again\n${logs()}`,
        15_000,
      );
    }
    const killedFigures = {
      runs: RUNS,
      windowMs: p50Max(killed.map((k) => k.windowMs)),
      failed: p50Max(killed.map((k) => k.failed)),
      stallWindowMs: p50Max(killed.map((k) => k.stallWindowMs)),
      attempts: killed.reduce((n, k) => n + k.attempts, 0),
      errors: killed.map((k) => k.errors),
    };
    report("ecmp SIGKILL of one instance", killedFigures);
    // The unplanned target, at most 1 s at p50.
    assert.ok(killedFigures.stallWindowMs.p50 <= 1_000, JSON.stringify(killedFigures));

    report("ecmp", {
      runs: RUNS,
      clients: CLIENT_SOURCES.length,
      shareOfA: shares,
      withdrawMs: p50Max(withdrawMs),
      movedConnectionsReset: p50Max(moved),
      survivorResets: 0,
      resetByTheReturn: p50Max(movedBack),
      resilientNextHopGroups: await resilientGroupsSupported(lab),
    });
  } finally {
    for (const d of daemons.reverse()) await d.stop();
    await instances.a.stop();
    await instances.b.stop();
    await Promise.all(backends.map((b) => b.kill()));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
