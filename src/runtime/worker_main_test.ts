import assert from "node:assert/strict";
import type { FromWorker, ToWorker, WorkerStats } from "./messages.ts";
import { SharedCounts } from "./shared_counts.ts";
import { listenerSpec, nameVia, startNamed } from "./_test_backend.ts";

Deno.test("worker: an older plan arriving after a newer one is not applied", async () => {
  const a = startNamed("a");
  const b = startNamed("b");
  const worker = new Worker(new URL("./worker_main.ts", import.meta.url), { type: "module" });
  const stats: WorkerStats[] = [];
  const bound = Promise.withResolvers<string>();
  worker.onmessage = (event: MessageEvent<FromWorker>) => {
    const message = event.data;
    if (message.type === "stats") stats.push(message.stats);
    if (message.type === "bound") bound.resolve(message.results[0]?.address ?? "");
  };
  const send = (message: ToWorker) => worker.postMessage(message);
  const backend = (port: number, slot: number) => ({
    key: `127.0.0.1:${port}`,
    host: "127.0.0.1",
    port,
    weight: 1,
    slot,
  });
  try {
    send({
      type: "init",
      worker: 0,
      backendCounts: SharedCounts.create(4, 1).init,
      listenerCounts: SharedCounts.create(1, 1).init,
      rotationCounts: SharedCounts.create(1, 1).init,
      statsIntervalMs: 20,
      logLevel: "error",
      logFormat: "text",
    });
    send({
      type: "listeners",
      version: 1,
      listeners: [{ ...listenerSpec("web"), counterSlot: 0, rotationSlot: 0 }],
    });
    const address = await bound.promise;
    assert.match(address, /^127\.0\.0\.1:\d+$/);
    send({
      type: "backends",
      version: 5,
      layoutVersion: 2,
      pool: "web",
      backends: [backend(a.port, 0)],
    });
    send({
      type: "backends",
      version: 4,
      layoutVersion: 1,
      pool: "web",
      backends: [backend(b.port, 1)],
    });
    send({ type: "start", version: 3 }); // older too: dropped, so the listener does not accept
    send({ type: "start", version: 6 });
    assert.equal(await nameVia(address), "a");
    const deadline = performance.now() + 3_000;
    const isDone = (s: WorkerStats) => s.version === 6 && s.listeners[0]?.stats.accepted === 1;
    while (!stats.some(isDone)) {
      assert.ok(performance.now() < deadline, "stats of version 6 with the connection");
      await new Promise((r) => setTimeout(r, 10));
    }
    const last = stats.find(isDone)!;
    assert.deepEqual(last.pools[0]!.pool.backends.map((r) => r.key), [a.key]);
    const stopped = Promise.withResolvers<void>();
    worker.addEventListener("message", (e: MessageEvent<FromWorker>) => {
      if (e.data.type === "stopped") stopped.resolve();
    });
    send({ type: "stop", version: 7, drainMs: 0 });
    await stopped.promise;
  } finally {
    worker.terminate();
    await Promise.all([a.close(), b.close()]);
  }
});
