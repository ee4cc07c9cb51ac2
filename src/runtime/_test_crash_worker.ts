/**
 * Test-only worker entry: the real data-plane worker, plus a fault to inject. A message
 * naming this worker's index on the {@linkcode CRASH_CHANNEL} broadcast channel makes it
 * throw an uncaught error, as a bug in the worker would. The product worker knows nothing
 * of this.
 *
 * @module
 */
import "./worker_main.ts";

/** The broadcast channel a test posts a worker index on to crash that worker. */
export const CRASH_CHANNEL = "nautiluslb-test-crash";

/** This module, as `RuntimeOptions.workerModule`. */
export const CRASH_WORKER_MODULE: URL = new URL(import.meta.url);

/** Crashes data-plane worker `index` of a runtime started with {@linkcode CRASH_WORKER_MODULE}. */
export function crashWorker(index: number): void {
  const channel = new BroadcastChannel(CRASH_CHANNEL);
  channel.postMessage(index);
  channel.close();
}

// Only inside a worker: learn the index from `init`, then wait for a crash request.
if (typeof WorkerGlobalScope !== "undefined" && self instanceof WorkerGlobalScope) {
  let index: number | undefined;
  self.addEventListener("message", (event: MessageEvent) => {
    if (event.data?.type === "init") index = event.data.worker;
  });
  const channel = new BroadcastChannel(CRASH_CHANNEL);
  channel.onmessage = (event: MessageEvent<number>) => {
    if (event.data !== index) return;
    setTimeout(() => {
      throw new Error(`Worker ${index} crashed on request`);
    });
  };
}
