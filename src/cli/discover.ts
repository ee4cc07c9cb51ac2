/**
 * `nautiluslb discover`: the pools the config resolves to, and why candidates are left out.
 * What it runs is in `_discover_run.ts`, loaded only when `discover` runs.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { lazyAction } from "./_common.ts";

/** Adds `discover` to the program. */
export function addDiscoverCommand(
  program: Command,
  setExit: (code: number) => void,
  signal: AbortSignal,
): void {
  program.command("discover")
    .description("print the resolved pools: backends, and with --explain what was left out and why")
    .option("-n, --namespace <namespace>", "only listeners of this namespace")
    .option("-o, --output <format>", "table, json or yaml", "table")
    .option("--explain", "list excluded candidates with their reasons")
    .option("--check", "probe every backend once and add a health column (as `check` does)")
    .option("-w, --watch", "keep running and print every change as it happens")
    .option("--from-manifests <path>", "resolve offline from a YAML file or directory")
    .option("--kubeconfig <file>", "kubeconfig file (overrides settings.kubeconfigPath)")
    .option("--context <name>", "kubeconfig context")
    .addHelpText(
      "after",
      "\nExamples:\n  nautiluslb discover --namespace development\n" +
        "  nautiluslb discover --from-manifests examples/cluster/ --explain\n" +
        "  nautiluslb discover -o json --watch",
    )
    .action(
      lazyAction(async () => (await import("./_discover_run.ts")).runDiscover, setExit, signal),
    );
}
