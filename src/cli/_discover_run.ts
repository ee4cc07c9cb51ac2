/**
 * What `nautiluslb discover` runs: resolve, print, and with `--watch` print every change.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { writeOut } from "../log/mod.ts";
import { parseOutput, PLAN_OUTPUT_FORMATS } from "./_common.ts";
import { EXIT_OK } from "./_errors.ts";
import { renderPlans } from "./_render.ts";
import { openFromFlags } from "./_open.ts";
import { withFingerprints } from "../control/mod.ts";
import { diffPlans, healthTargetsOf } from "../resolve/mod.ts";
import type { PoolPlan } from "../core/plan.ts";
import { DEFAULT_PROBE_CONCURRENCY, probeAll } from "./_check.ts";

/** `discover`'s own options, as the command line gives them. */
export interface DiscoverFlags {
  readonly namespace?: string;
  readonly output: string;
  readonly explain?: true;
  readonly check?: true;
  readonly watch?: true;
  readonly fromManifests?: string;
  readonly kubeconfig?: string;
  readonly context?: string;
}

/** Runs `discover` with `options`; sets the exit code through `setExit`. */
export async function runDiscover(
  options: DiscoverFlags,
  command: Command,
  setExit: (code: number) => void,
  signal: AbortSignal,
): Promise<void> {
  const format = parseOutput(options.output, PLAN_OUTPUT_FORMATS);
  const { source } = await openFromFlags(
    command,
    { ...options, isOneShot: options.watch !== true },
    signal,
  );
  try {
    let current = withFingerprints(source.plans, source.listeners);
    const health = options.check
      ? await probeAll(healthTargetsOf(current), DEFAULT_PROBE_CONCURRENCY, signal)
      : undefined;
    writeOut(renderPlans(current, { format, explain: options.explain, health }));
    if (options.watch) {
      for await (const update of source.updates()) {
        const next = withFingerprints(update, source.listeners);
        writeOut(renderChanges(current, next, format));
        current = next;
      }
    }
  } finally {
    await source.close();
  }
  setExit(EXIT_OK);
}

/** One line (or JSON object) per backend added to or removed from a pool. */
function renderChanges(
  before: readonly PoolPlan[],
  after: readonly PoolPlan[],
  format: "table" | "json" | "yaml",
): string {
  const time = new Date().toISOString();
  const lines: string[] = [];
  const old = new Map(before.map((p) => [p.name, p]));
  for (const plan of after) {
    const prev = old.get(plan.name) ??
      { ...plan, backends: [], excluded: [], warnings: [], inputWarnings: [], healthTargets: [] };
    const diff = diffPlans(prev, plan);
    for (const b of diff.added) {
      lines.push(
        format === "table"
          ? `${time}  ${plan.name}  + ${b.address}  ${b.service ?? ""} ${b.node ?? ""}`.trimEnd()
          : JSON.stringify({ time, pool: plan.name, change: "added", backend: b }),
      );
    }
    for (const b of diff.removed) {
      const why = plan.excluded.find((e) => e.address === b.address);
      const reason = why ? why.detail ? `${why.reason} (${why.detail})` : why.reason : "gone";
      lines.push(
        format === "table"
          ? `${time}  ${plan.name}  - ${b.address}  ${b.service ?? ""} ${b.node ?? ""}  ${reason}`
            .replace(/ +$/, "")
          : JSON.stringify({ time, pool: plan.name, change: "removed", backend: b, reason }),
      );
    }
    for (const c of diff.changed) {
      if (!c.fields.includes("terminating")) continue;
      const b = c.after;
      const note = b.terminating === true
        ? "serving-terminating (the Service has no ready endpoint; still serving)"
        : "no longer a terminating fallback";
      lines.push(
        format === "table"
          ? `${time}  ${plan.name}  ~ ${b.address}  ${b.service ?? ""} ${b.node ?? ""}  ${note}`
            .replace(/ +$/, "")
          : JSON.stringify({ time, pool: plan.name, change: "changed", backend: b, reason: note }),
      );
    }
    if (plan.fingerprint !== undefined && plan.fingerprint !== prev.fingerprint) {
      lines.push(
        format === "table"
          ? `${time}  ${plan.name}  maglev fingerprint ${plan.fingerprint}`
          : JSON.stringify({
            time,
            pool: plan.name,
            change: "fingerprint",
            fingerprint: plan.fingerprint,
          }),
      );
    }
  }
  return lines.length > 0 ? lines.join("\n") + "\n" : "";
}
