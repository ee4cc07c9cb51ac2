/**
 * YAML text to a validated, defaulted, frozen {@linkcode Config}, reporting every problem at
 * once with its line and column.
 *
 * Stages: YAML syntax (`core/yaml.ts`: data, positions, repeated keys, aliases), the zod schema
 * (types, ranges, formats, unknown keys), then checks across values (duplicate names, address
 * conflicts, listeners without backends). Each stage runs even when an earlier one found
 * problems, except that schema checks are skipped when the YAML itself is broken, since its
 * shape is then a guess.
 *
 * @module
 */
import type { Config } from "./types.ts";
import type { ConfigIssue } from "./issue.ts";
import { configSchema } from "./schema.ts";
import { Locator } from "./_locate.ts";
import { parseYaml } from "../core/yaml.ts";
import { key } from "./_messages.ts";
import { withoutNulls } from "./_raw.ts";
import { fallbackMessage, schemaIssues } from "./_schema_issues.ts";
import { crossChecks } from "./_cross_checks.ts";
import { buildConfig, deepFreeze } from "./_build.ts";
import { warningsOf } from "./_warnings.ts";

/** Outcome of {@linkcode parseConfig}. Issues and warnings are in document order. */
export type ParseResult =
  | {
    readonly ok: true;
    readonly config: Config;
    /** Legal but probably unintended settings, e.g. `connectTimeout` above `requestTimeout`. */
    readonly warnings: readonly ConfigIssue[];
  }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/**
 * Parses and validates a config file's text. Never throws for bad input: every problem comes
 * back as an issue.
 *
 * @param text the YAML source
 * @param file the name to put in issues, as the user wrote it (e.g. `config.yaml`)
 */
export function parseConfig(text: string, file: string): ParseResult {
  const yaml = parseYaml(text);
  const at = new Locator(text, yaml.root, file);
  const issues = yaml.problems.map((problem) => at.issueAtOffset(problem.offset, problem.message));
  // Repeated keys leave a well-formed document (the last one wins); keep checking then.
  if (!yaml.problems.every((p) => p.isShapeKnown)) return fail(issues);

  const data = withoutNulls(yaml.data);
  if (data === null || data === undefined) {
    issues.push(
      at.issueAtOffset(0, `the file has no content: expected a map with ${key("configurations")}`),
    );
    return fail(issues);
  }

  const result = configSchema.safeParse(data, { error: fallbackMessage, reportInput: true });
  if (!result.success) {
    for (const issue of result.error.issues) issues.push(...schemaIssues(issue, [], at));
  }
  issues.push(...crossChecks(data, at));
  if (issues.length > 0 || !result.success) return fail(issues);

  const config = deepFreeze(buildConfig(result.data));
  return { ok: true, config, warnings: sortIssues(warningsOf(config, at)) };
}

function fail(issues: ConfigIssue[]): ParseResult {
  return { ok: false, issues: unique(sortIssues(issues)) };
}

/**
 * Drops repeats of an issue (same place, same message) from issues in document order. A value
 * can fail two checks that word their failure the same way, e.g. `1e308` is both not a safe
 * integer and out of range.
 */
function unique(issues: ConfigIssue[]): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  let here = 0; // first issue in `out` at the current line and column
  for (const issue of issues) {
    const first = out[here];
    if (first === undefined || first.line !== issue.line || first.column !== issue.column) {
      here = out.length;
    } else if (
      out.slice(here).some((seen) => seen.path === issue.path && seen.message === issue.message)
    ) continue;
    out.push(issue);
  }
  return out;
}

/** Document order; stable, so problems at one spot keep the order they were found in. */
function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => a.issue.line - b.issue.line || a.issue.column - b.issue.column || a.i - b.i)
    .map(({ issue }) => issue);
}
