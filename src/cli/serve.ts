/**
 * `nautiluslb serve`: run the load balancer. The command's options live here; what it runs is
 * in `_serve_run.ts`, loaded only when `serve` runs, so the other commands start without the
 * runtime, admin server and metrics.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { lazyAction } from "./_common.ts";

/** Adds `serve` to the program. */
export function addServeCommand(
  program: Command,
  setExit: (code: number) => void,
  signal: AbortSignal,
): void {
  program.command("serve")
    .description("run the load balancer")
    .option("--dry-run", "resolve everything, check that listeners can bind, print the plan, exit")
    .option(
      "--from-manifests <path>",
      "take pools from a YAML file or directory instead of a cluster",
    )
    .option("--kubeconfig <file>", "kubeconfig file (overrides settings.kubeconfigPath)")
    .option("--context <name>", "kubeconfig context")
    .option("--watch-config", "reload the config when its file (or its directory) changes")
    .option(
      "--admin-address <host:port>",
      "admin server address (overrides settings.adminAddress; e.g. for a handover)",
    )
    .option(
      "--handover",
      "take over listeners another serve holds (SO_REUSEPORT); without it a served port is refused",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  nautiluslb serve -c config.yaml\n  nautiluslb serve --dry-run\n" +
        "  nautiluslb serve --watch-config\n" +
        "  nautiluslb serve --handover --admin-address 127.0.0.1:9091\n\n" +
        "SIGHUP reloads the config; see docs/reload_and_handover.md",
    )
    .action(lazyAction(async () => (await import("./_serve_run.ts")).runServe, setExit, signal));
}
