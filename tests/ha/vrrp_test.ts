/**
 * Active/standby: two `serve` instances and keepalived as `deploy/keepalived/` configures it
 * (VRRPv3 unicast, 100 ms adverts, `/readyz` every second, fall 2, the track file written by
 * the supervisor), a client on the LAN opening a connection every 20 ms to the address
 * keepalived moves. Five runs of each fault; each run's failed connections and outage window
 * (first to last failed connect) are printed as `[measure]` lines, p50 and max per scenario.
 *
 * Needs root, keepalived and curl (scripts/ha_install.sh); skips with one notice line
 * otherwise, unless `NAUTILUS_HA_REQUIRED=1`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { report } from "../reliability/_harness.ts";
import { delay, waitUntil } from "../_helpers.ts";
import { CLIENT_ADDRESS, ignoreHa, type InstanceName, Lab, VRRP_VIP } from "./_lab.ts";
import { Instance, serveConfig, startBackends } from "./_instances.ts";
import { Keepalived } from "./_daemons.ts";
import { Holder, type Outage, outageOf, p50Max, Probe, RUNS } from "./_traffic.ts";

/** The timing rule of deploy/keepalived: 1 s x fall 2 + 0.1 s advert + 1 s margin, rounded up. */
const SHUTDOWN_DELAY = "3.5s";
/** Idle connections held across a planned failover. */
const ESTABLISHED = 8;
/** Time after a move for stragglers (retransmitted SYNs, late ARP updates) to show. */
const SETTLE_MS = 1_500;

/** The two instances and their keepalived, with what the scenarios need. */
class Pair {
  readonly instances: Record<InstanceName, Instance>;
  readonly keepalived: Record<InstanceName, Keepalived>;
  readonly #lab: Lab;

  constructor(lab: Lab, dir: string, backends: readonly string[]) {
    this.#lab = lab;
    const config = serveConfig(backends, SHUTDOWN_DELAY);
    const make = (name: InstanceName) => {
      Deno.mkdirSync(`${dir}/${name}`);
      return new Instance(lab, name, `${dir}/${name}`, config);
    };
    this.instances = { a: make("a"), b: make("b") };
    this.keepalived = {
      a: new Keepalived(lab, this.instances.a),
      b: new Keepalived(lab, this.instances.b),
    };
  }

  /** Which instance holds the address; throws when none or both do. */
  async active(): Promise<InstanceName> {
    const [a, b] = await Promise.all([
      this.#lab.hasAddress("a", VRRP_VIP),
      this.#lab.hasAddress("b", VRRP_VIP),
    ]);
    if (a === b) throw new Error(`The address is on ${a ? "both instances" : "no instance"}`);
    return a ? "a" : "b";
  }

  /** Waits until `name` holds the address and the other does not. */
  async waitActive(name: InstanceName, ms = 15_000): Promise<void> {
    await waitUntil(
      async () => (await this.active().catch(() => undefined)) === name,
      `${name} to hold ${VRRP_VIP}\n${this.logs()}`,
      ms,
    );
  }

  /** Waits until `name`'s keepalived reports BACKUP. */
  async waitStandby(name: InstanceName, ms = 15_000): Promise<void> {
    await waitUntil(
      async () => (await this.keepalived[name].state()) === "BACKUP",
      `${name} to be BACKUP\n${this.logs()}`,
      ms,
    );
  }

  logs(): string {
    const tail = (path: string) => {
      try {
        return Deno.readTextFileSync(path).split("\n").slice(-15).join("\n");
      } catch {
        return "";
      }
    };
    return (["a", "b"] as const).map((n) => {
      const { dir } = this.instances[n];
      return `--- keepalived ${n}:\n${tail(`${dir}/keepalived.log`)}\n--- notify ${n}:\n${
        tail(this.keepalived[n].notifyLog)
      }`;
    }).join("\n");
  }

  async stop(): Promise<void> {
    for (const name of ["a", "b"] as const) {
      await this.keepalived[name].stop();
      await this.instances[name].stop();
    }
  }
}

function other(name: InstanceName): InstanceName {
  return name === "a" ? "b" : "a";
}

/** Runs `action` while the client probes; returns what the client saw. */
async function probed(lab: Lab, action: () => Promise<void>): Promise<Outage> {
  const probe = new Probe(lab, VRRP_VIP);
  let failure: unknown;
  let faultAt = Date.now();
  try {
    await probe.warmUp();
    faultAt = Date.now();
    await action();
    await delay(SETTLE_MS);
  } catch (error) {
    failure = error;
  }
  // Always collect the client, also when the action failed.
  const attempts = await probe.stop();
  if (failure !== undefined) throw failure;
  return outageOf(attempts, faultAt);
}

function summary(label: string, runs: readonly Outage[]): Record<string, unknown> {
  const figures = {
    runs: runs.length,
    windowMs: p50Max(runs.map((r) => r.windowMs)),
    failed: p50Max(runs.map((r) => r.failed)),
    refused: p50Max(runs.map((r) => r.refused)),
    attempts: runs.reduce((n, r) => n + r.attempts, 0),
    slow: p50Max(runs.map((r) => r.slow)),
    stallWindowMs: p50Max(runs.map((r) => r.stallWindowMs)),
    errors: runs.map((r) => r.errors),
    disrupted: runs.map((r) => r.disrupted),
  };
  report(`vrrp ${label}`, figures);
  return figures;
}

Deno.test({
  name: "keepalived pair on /readyz: planned and unplanned failover, standby loss, return",
  ignore: ignoreHa(),
}, async (t) => {
  await using lab = await Lab.create();
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb_ha_" });
  const backends = await startBackends(lab, 3);
  const pair = new Pair(lab, dir, backends.map((b) => b.key));
  try {
    await Promise.all([pair.instances.a.start(), pair.instances.b.start()]);
    await pair.keepalived.a.start();
    await pair.waitActive("a");
    await pair.keepalived.b.start();
    await pair.waitStandby("b");

    const returns: Outage[] = [];
    /** Brings `name`'s serve back and checks that its return costs no connection. */
    const restartServe = async (name: InstanceName) => {
      const seen = await probed(lab, async () => {
        await pair.instances[name].start();
        await pair.waitStandby(name);
      });
      returns.push(seen);
      assert.equal(
        seen.failed,
        0,
        `the old active's return failed connections: ${JSON.stringify(seen)}`,
      );
      assert.equal(await pair.active(), other(name), "the address stays where it is");
    };

    await t.step("planned: SIGTERM with shutdownDelay, no refused connection", async () => {
      const runs: Outage[] = [];
      const establishedReset: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const active = await pair.active();
        // Connections open on the active before the move, idle, checked after it.
        const held = new Holder(lab, VRRP_VIP, Array(ESTABLISHED).fill(CLIENT_ADDRESS));
        try {
          assert.ok((await held.opened()).every((c) => c.ok));
          const seen = await probed(lab, async () => {
            pair.instances[active].serve!.kill("SIGTERM");
            await pair.waitActive(other(active));
          });
          runs.push(seen);
          assert.equal(seen.refused, 0, `run ${i}: ${JSON.stringify(seen)}`);
          // The old active still runs (shutdownDelay), but the address is elsewhere now.
          establishedReset.push((await held.check()).filter((c) => !c.ok).length);
        } finally {
          await held.close();
        }
        await pair.instances[active].exited();
        await restartServe(active);
      }
      const figures = summary("planned SIGTERM", runs);
      report("vrrp planned SIGTERM: established connections reset by the move", {
        perRun: ESTABLISHED,
        reset: establishedReset,
      });
      // Documented behaviour: established connections end when the address moves.
      assert.deepEqual(establishedReset, Array(RUNS).fill(ESTABLISHED));
      // Losses only at the instant of the move: the issue's 50 ms window.
      assert.ok((figures.windowMs as { p50: number }).p50 <= 50, JSON.stringify(figures));
    });

    const unplanned = async (
      label: string,
      fault: (active: InstanceName) => Promise<void>,
      restore: (active: InstanceName) => Promise<void>,
    ) => {
      const runs: Outage[] = [];
      for (let i = 0; i < RUNS; i++) {
        const active = await pair.active();
        runs.push(
          await probed(lab, async () => {
            await fault(active);
            await waitUntil(
              () => lab.hasAddress(other(active), VRRP_VIP),
              `${other(active)} to take ${VRRP_VIP}\n${pair.logs()}`,
              15_000,
            );
          }),
        );
        await restore(active);
      }
      const figures = summary(label, runs);
      // The issue's target: an unplanned outage of at most 1 s at p50, here counting the
      // connections that stalled on a retransmitted SYN as well as those that failed.
      assert.ok((figures.stallWindowMs as { p50: number }).p50 <= 1_000, JSON.stringify(figures));
    };

    await t.step("unplanned: SIGKILL of the active process", async () => {
      await unplanned(
        "SIGKILL serve",
        (active) => pair.instances[active].kill("SIGKILL"),
        restartServe,
      );
    });

    await t.step("unplanned: the active's link down (host gone)", async () => {
      await unplanned(
        "link down",
        (active) => lab.setLink(active, false),
        async (active) => {
          const seen = await probed(lab, async () => {
            await lab.setLink(active, true);
            await pair.waitStandby(active);
          });
          returns.push(seen);
          assert.equal(
            seen.failed,
            0,
            `the link's return failed connections: ${JSON.stringify(seen)}`,
          );
        },
      );
    });

    await t.step("unplanned: keepalived on the active killed", async () => {
      await unplanned(
        "keepalived SIGKILL",
        async (active) => {
          await pair.keepalived[active].kill();
          // keepalived could not remove the address: it stays on the old active until
          // keepalived runs again there, so the other one holding it too counts as the move.
        },
        async (active) => {
          const seen = await probed(lab, async () => {
            await pair.keepalived[active].start();
            await pair.waitStandby(active);
            await pair.waitActive(other(active));
          });
          returns.push(seen);
          assert.equal(
            seen.failed,
            0,
            `keepalived's return failed connections: ${JSON.stringify(seen)}`,
          );
        },
      );
    });

    await t.step("standby killed: no failed connection", async () => {
      const runs: Outage[] = [];
      for (let i = 0; i < RUNS; i++) {
        const active = await pair.active();
        const standby = other(active);
        const seen = await probed(lab, async () => {
          await pair.instances[standby].kill("SIGKILL");
          await waitUntil(
            async () => (await pair.keepalived[standby].state()) === "FAULT",
            "the standby in FAULT",
            15_000,
          );
        });
        runs.push(seen);
        assert.equal(seen.failed, 0, `run ${i}: ${JSON.stringify(seen)}`);
        assert.equal(await pair.active(), active);
        await restartServe(standby);
      }
      summary("standby SIGKILL", runs);
    });

    await t.step("the old active's return: no second outage", () => {
      const figures = summary("old active returns", returns);
      assert.equal((figures.failed as { max: number }).max, 0);
    });

    await t.step("VRRP adverts dropped between the two: what clients see", async () => {
      const runs: Outage[] = [];
      let bothMaster = 0;
      for (let i = 0; i < RUNS; i++) {
        const seen = await probed(lab, async () => {
          for (const name of ["a", "b"] as const) {
            await lab.exec(
              name,
              ["nft", "-f", "-"],
              "table ip ha_vrrp_drop {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    ip protocol vrrp drop\n  }\n}\n",
            );
          }
          await delay(2_000);
          const [a, b] = await Promise.all([
            lab.hasAddress("a", VRRP_VIP),
            lab.hasAddress("b", VRRP_VIP),
          ]);
          if (a && b) bothMaster++;
          for (const name of ["a", "b"] as const) {
            await lab.exec(name, ["nft", "delete", "table", "ip", "ha_vrrp_drop"]);
          }
          await waitUntil(
            async () => (await pair.active().catch(() => undefined)) !== undefined,
            "one master again",
            15_000,
          );
        });
        runs.push(seen);
      }
      const figures = summary("adverts dropped 2s", runs);
      report("vrrp adverts dropped: both held the address", { runs: RUNS, bothMaster });
      // Documented behaviour, not a target: both become master and both serve, since both
      // pick the same backend; what clients lose is what this measures.
      assert.equal(bothMaster, RUNS, JSON.stringify(figures));
    });
  } finally {
    await pair.stop();
    await Promise.all(backends.map((b) => b.kill()));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
