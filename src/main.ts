/**
 * NautilusLB entry point: `deno run --allow-net --allow-read --allow-env src/main.ts <command>`.
 * The only place that calls `Deno.exit`.
 *
 * @module
 */
import { run } from "./cli/mod.ts";

if (import.meta.main) {
  const code = await run(Deno.args, { onForceExit: () => Deno.exit(130) });
  Deno.exit(code);
}
