/**
 * What `nautiluslb check` runs: one health round over the resolved pools, and the report.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import type { PoolPlan } from "../core/plan.ts";
import { writeOut } from "../log/mod.ts";
import { parseOutput, PLAN_OUTPUT_FORMATS } from "./_common.ts";
import { CliError, EXIT_BAD, EXIT_OK, EXIT_USAGE } from "./_errors.ts";
import { healthTargetsOf } from "../resolve/mod.ts";
import { type BackendHealthReport, renderPlans } from "./_render.ts";
import { poolsDown, probeAll } from "./_check.ts";
import { openFromFlags } from "./_open.ts";
import { formatTable } from "./_table.ts";

/** `check`'s own options, as the command line gives them. */
export interface CheckFlags {
  readonly namespace?: string;
  readonly output: string;
  readonly fromManifests?: string;
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly concurrency: string;
}

/** Runs `check` with `options`; sets the exit code through `setExit`. */
export async function runCheck(
  options: CheckFlags,
  command: Command,
  setExit: (code: number) => void,
  signal: AbortSignal,
): Promise<void> {
  const format = parseOutput(options.output, PLAN_OUTPUT_FORMATS);
  const concurrency = Number(options.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new CliError(
      `Cannot use --concurrency "${options.concurrency}": expected a positive integer`,
      EXIT_USAGE,
    );
  }
  const { source } = await openFromFlags(command, { ...options, isOneShot: true }, signal);
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
