/**
 * Admission across data-plane workers: `maxConnectionsPerSource` counts the whole process,
 * and a reload changes the ACL and the limit in place in every worker, open connections kept
 * and still counted.
 */
import assert from "node:assert/strict";
import { Runtime } from "./runtime.ts";
import {
  CHECK,
  type HeldClient,
  holdVia,
  listenerSpec,
  planOf,
  startEchoNamed,
  targets,
  waitFor,
} from "./_test_backend.ts";

Deno.test("workers: maxConnectionsPerSource holds process-wide; a reload changes ACL and limit in place", async () => {
  const backend = startEchoNamed("a");
  const web = { ...listenerSpec("web"), healthCheck: CHECK, maxConnectionsPerSource: 8 };
  const runtime = await Runtime.start(
    {
      listeners: [web],
      healthTargets: targets,
      discovery: () => ({ source: "static", state: "synced" }),
      workers: 2,
      workerStatsIntervalMs: 50,
    },
    [planOf("web", [backend.port])],
  );
  const held: HeldClient[] = [];
  const stats = () => runtime.snapshot().listeners[0]!.stats;
  /** Waits until one more refusal (acl or source_limit) than in `before` is counted. */
  const refusalReported = (before: { acl: number; source_limit: number }) =>
    waitFor(
      () =>
        stats().refusedByCause!.acl + stats().refusedByCause!.source_limit >
          before.acl + before.source_limit,
      3_000,
      "the refusal reported",
    );
  try {
    const address = runtime.addresses.get("web")!;
    for (let i = 0; i < 8; i++) held.push(await holdVia(address));
    assert.ok(held.every((c) => c.name === "a"), "8 connections, the limit, all forwarded");
    const over: HeldClient[] = [];
    for (let i = 0; i < 4; i++) over.push(await holdVia(address, 1, 500));
    held.push(...over);
    assert.deepEqual(over.map((c) => c.name), ["", "", "", ""], "one over (and more) refused");
    await waitFor(() => stats().refusedByCause?.source_limit === 4, 3_000, "source_limit reported");
    const accepted = runtime.workers().map((w) => w.accepted);
    console.log(`accepted per worker: ${accepted.join(", ")}`);

    // Deny this client: new connections refused as acl in every worker, open ones stay.
    await runtime.reconfigure(
      {
        add: [],
        remove: [],
        rebind: [],
        update: [{ ...web, access: { allow: [], deny: ["127.0.0.0/8"] } }],
      },
      [planOf("web", [backend.port])],
    );
    // The update reaches each worker as a message: until a worker has it, its refusals are
    // still source_limit. Wait until six refusals in a row are acl, each one seen counted.
    let inARow = 0;
    const deadline = performance.now() + 5_000;
    while (inARow < 6) {
      assert.ok(performance.now() < deadline, "every worker refuses as acl within 5 s");
      const before = stats().refusedByCause!;
      const denied = await holdVia(address, 1, 500);
      held.push(denied);
      assert.equal(denied.name, "", "a denied client never reaches the backend");
      await refusalReported(before);
      inARow = stats().refusedByCause!.acl > before.acl ? inARow + 1 : 0;
    }
    const alive = await Promise.all(held.slice(0, 8).map((c) => c.isAlive(1_000)));
    assert.deepEqual(alive, new Array(8).fill(true), "open connections survive the reload");

    // Allow again with a limit of 9: the 8 open connections still count, so exactly one more.
    await runtime.reconfigure(
      { add: [], remove: [], rebind: [], update: [{ ...web, maxConnectionsPerSource: 9 }] },
      [planOf("web", [backend.port])],
    );
    // A worker that has not had the update yet still refuses as acl; retry past those. Once
    // through, exactly one more connection fits: the next refusal is source_limit, and no
    // second connection ever gets through.
    let admitted = 0;
    let isLimitSeen = false;
    const until = performance.now() + 5_000;
    while (!isLimitSeen) {
      assert.ok(performance.now() < until, "the reload reaches every worker within 5 s");
      const before = stats().refusedByCause!;
      const client = await holdVia(address, 1, 500);
      held.push(client);
      if (client.name === "a") {
        admitted++;
        continue;
      }
      await refusalReported(before);
      isLimitSeen = admitted === 1 && stats().refusedByCause!.source_limit > before.source_limit;
    }
    assert.equal(admitted, 1, "the 8 open connections still count: one more fits a limit of 9");
  } finally {
    for (const c of held) c.conn.close();
    await runtime.stop();
    await backend.close();
  }
});
