/**
 * Child process of `fd_exhaustion_test.ts`, run under a low `ulimit -n`: an admin server
 * and a health probe in a process whose descriptors run out.
 *
 * Protocol: prints one JSON line per step on stdout and reads one command per line on stdin:
 * `exhaust` (open files until `EMFILE`, then probe the backend), `free` (close them), `stop`.
 *
 * @module
 */
import { setupLogging } from "../../src/log/mod.ts";
import { startAdminServer } from "../../src/admin/mod.ts";
import { probeTcp } from "../../src/health/mod.ts";
import { sampleSnapshot } from "../../src/admin/_test_snapshot.ts";

// Like the CLI: signal handlers are installed at start (Deno cannot add one without a free
// descriptor), and an unhandled rejection is logged instead of ending the process.
for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => {});
globalThis.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  console.error("Unhandled rejection:", event.reason);
});
await setupLogging({ level: "debug" });

const controller = new AbortController();
const admin = await startAdminServer({
  hostname: "127.0.0.1",
  port: 0,
  signal: controller.signal,
  snapshot: () => sampleSnapshot(),
  processMetrics: false,
});
const backend = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const backendLoop = (async () => {
  for await (const conn of backend) conn.close();
})().catch(() => {});

const say = (value: unknown) => console.log(JSON.stringify(value));
say({ step: "started", adminPort: admin.addr.port, backendPort: backend.addr.port });

const held: Deno.FsFile[] = [];
const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let pending = "";
for await (const text of lines) {
  pending += text;
  let newline: number;
  while ((newline = pending.indexOf("\n")) >= 0) {
    const command = pending.slice(0, newline);
    pending = pending.slice(newline + 1);
    if (command === "exhaust") {
      let error = "";
      try {
        for (let i = 0; i < 100_000; i++) held.push(Deno.openSync("/dev/null"));
      } catch (e) {
        error = (e as { code?: string }).code ?? String(e);
      }
      const probe = await probeTcp({ host: "127.0.0.1", port: backend.addr.port }, {
        timeoutMs: 1000,
      });
      say({ step: "exhausted", held: held.length, error, probe });
    } else if (command === "free") {
      for (const file of held.splice(0)) file.close();
      const probe = await probeTcp({ host: "127.0.0.1", port: backend.addr.port }, {
        timeoutMs: 1000,
      });
      say({ step: "freed", probe });
    } else if (command === "stop") {
      controller.abort();
      await admin.finished;
      backend.close();
      await backendLoop;
      say({ step: "stopped", connections: admin.connections });
      Deno.exit(0);
    }
  }
}
// Stdin closed without `stop`: the parent gave up, so end too.
controller.abort();
backend.close();
Deno.exit(1);
