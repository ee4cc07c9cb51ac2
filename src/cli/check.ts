/**
 * `nautiluslb check`: resolve the pools as `discover` does, probe every backend once,
 * report, and exit 1 when a pool has no healthy backend. What it runs is in `_check_run.ts`,
 * loaded only when `check` runs.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { lazyAction } from "./_common.ts";
import { DEFAULT_PROBE_CONCURRENCY } from "./_check.ts";

/** Adds `check` to the program. */
export function addCheckCommand(
  program: Command,
  setExit: (code: number) => void,
  signal: AbortSignal,
): void {
  program.command("check")
    .description("probe every backend once, report, exit 1 if a pool has no healthy backend")
    .option("-n, --namespace <namespace>", "only listeners of this namespace")
    .option("-o, --output <format>", "table, json or yaml", "table")
    .option("--from-manifests <path>", "resolve offline from a YAML file or directory")
    .option("--kubeconfig <file>", "kubeconfig file (overrides settings.kubeconfigPath)")
    .option("--context <name>", "kubeconfig context")
    .option("--concurrency <n>", "probes in flight", String(DEFAULT_PROBE_CONCURRENCY))
    .addHelpText(
      "after",
      "\nExamples:\n  nautiluslb check\n  nautiluslb check -n development -o json\n\n" +
        "Exit codes: 0 every pool has a healthy backend, 1 a pool has none, 2 usage or connection error",
    )
    .action(lazyAction(async () => (await import("./_check_run.ts")).runCheck, setExit, signal));
}
