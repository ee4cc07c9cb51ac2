/**
 * `nautiluslb discover`: the pools the config resolves to, and why candidates are left out.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { writeOut } from "../log/mod.ts";
import { parseOutput } from "./_common.ts";
import { EXIT_OK } from "./_errors.ts";
import { renderPlans } from "./_render.ts";
import { openFromFlags } from "./_source.ts";
import { withFingerprints } from "./_pipeline.ts";
import { diffPlans, healthTargetsOf } from "../resolve/mod.ts";
import type { PoolPlan } from "../core/plan.ts";
import { DEFAULT_CHECK_CONCURRENCY, probeAll } from "./_check.ts";

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
    .action(async (options, command) => {
      const format = parseOutput(options.output, ["table", "json", "yaml"]) as
        | "table"
        | "json"
        | "yaml";
      const { source } = await openFromFlags(command, options, signal);
      try {
        let current = withFingerprints(source.plans, source.listeners);
        const health = options.check
          ? await probeAll(healthTargetsOf(current), DEFAULT_CHECK_CONCURRENCY, signal)
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
    });
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
