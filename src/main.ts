/**
 * NautilusLB entry point: `deno run --allow-net --allow-read --allow-env src/main.ts <command>`.
 * The only place that calls `Deno.exit`.
 *
 * @module
 */
import { run } from "./cli/mod.ts";
import { getLogger } from "./log/mod.ts";

if (import.meta.main) {
  // Last resort: a stray rejection is a bug to log, not a reason to drop every connection.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    getLogger().error("Unhandled rejection (please report): {error}", { error: event.reason });
  });
  const code = await run(Deno.args, {
    // A second signal during the drain: stop now, with the shell's 128 + signal number.
    onForceExit: (signal) => Deno.exit(signal === "SIGINT" ? 130 : 143),
  });
  Deno.exit(code);
}
