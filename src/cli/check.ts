/**
 * `nautiluslb check`: resolve the pools as `discover` does, probe every backend once,
 * report, and exit 1 when a pool has no healthy backend.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import type { PoolPlan } from "../core/plan.ts";
import { writeOut } from "../log/mod.ts";
import { parseOutput } from "./_common.ts";
import { CliError, EXIT_BAD, EXIT_OK, EXIT_USAGE } from "./_errors.ts";
import { healthTargetsOf } from "../resolve/mod.ts";
import { type BackendHealthReport, renderPlans } from "./_render.ts";
import { DEFAULT_CHECK_CONCURRENCY, poolsDown, probeAll } from "./_check.ts";
import { openFromFlags } from "./_source.ts";
import { formatTable } from "./_table.ts";

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
    .option("--concurrency <n>", "probes in flight", String(DEFAULT_CHECK_CONCURRENCY))
    .addHelpText(
      "after",
      "\nExamples:\n  nautiluslb check\n  nautiluslb check -n development -o json\n\n" +
        "Exit codes: 0 every pool has a healthy backend, 1 a pool has none, 2 usage or connection error",
    )
    .action(async (options, command) => {
      const format = parseOutput(options.output, ["table", "json", "yaml"]) as
        | "table"
        | "json"
        | "yaml";
      const concurrency = Number(options.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1) {
        throw new CliError(
          `Cannot use --concurrency "${options.concurrency}": expected a positive integer`,
          EXIT_USAGE,
        );
      }
      const { source } = await openFromFlags(command, options, signal);
      try {
        const health = await probeAll(healthTargetsOf(source.plans), concurrency, signal);
        const rendered = renderPlans(source.plans, { format, health });
        writeOut(rendered);
        const down = poolsDown(source.plans, health);
        if (format === "table") writeOut(renderSummary(source.plans, health));
        setExit(down.length === 0 ? EXIT_OK : EXIT_BAD);
      } finally {
        await source.close();
      }
    });
}

function renderSummary(
  plans: readonly PoolPlan[],
  health: ReadonlyMap<string, BackendHealthReport>,
): string {
  const rows = [["POOL", "HEALTHY", "STATUS"]];
  for (const p of plans) {
    const healthy = p.backends.filter((b) => health.get(b.address)?.state === "healthy").length;
    rows.push([p.name, `${healthy}/${p.backends.length}`, healthy > 0 ? "up" : "DOWN"]);
  }
  return "\n" + formatTable(rows);
}
