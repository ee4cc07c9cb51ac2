/**
 * YAML text to a validated, defaulted, frozen {@linkcode Config}, reporting every problem at
 * once with its line and column.
 *
 * Stages: YAML syntax (the `yaml` package, with a `LineCounter` for positions), the zod schema
 * (types, ranges, formats, unknown keys), then checks across values (duplicate names, address
 * conflicts, listeners without backends). Each stage runs even when an earlier one found
 * problems, except that schema checks are skipped when the YAML itself is broken, since its
 * shape is then a guess.
 *
 * @module
 */
import { type Document, LineCounter, parseDocument, type YAMLError } from "yaml";
import { errorMessage } from "../core/error_message.ts";
import type { Config } from "./types.ts";
import type { ConfigIssue } from "./issue.ts";
import { configSchema } from "./schema.ts";
import { Locator } from "./_locate.ts";
import { indexTree, toData } from "./_tree.ts";
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
  const lines = new LineCounter();
  let doc: Document;
  try {
    // Duplicate keys are found by `indexTree`: the package's own check is quadratic.
    doc = parseDocument(text, {
      lineCounter: lines,
      prettyErrors: false,
      uniqueKeys: false,
    });
  } catch (error) {
    // Only pathological input gets here (e.g. nesting deep enough to exhaust the stack).
    const at = new Locator(parseDocument(""), lines, file);
    return fail([at.issueAtOffset(0, `invalid YAML: ${sentence(errorMessage(error))}`)]);
  }
  const tree = indexTree(doc);
  const at = new Locator(doc, lines, file, tree.aliases);
  const issues: ConfigIssue[] = doc.errors.map((error) => yamlIssue(error, at));
  for (const problem of tree.problems) {
    issues.push(at.issueAtOffset(problem.offset, problem.message));
  }
  // Duplicate keys leave a well-formed document (the last one wins); keep checking then.
  const isShapeKnown = doc.errors.length === 0 && tree.problems.every((p) => p.isShapeKnown);
  if (!isShapeKnown) return fail(issues);

  const data = withoutNulls(toData(doc, tree));
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
  return { ok: false, issues: sortIssues(unique(issues)) };
}

/**
 * Drops repeats of an issue (same place, same message). A value can fail two checks that word
 * their failure the same way, e.g. `1e308` is both not a safe integer and out of range.
 */
function unique(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const id = `${issue.line}:${issue.column}:${issue.path}:${issue.message}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Document order; stable, so problems at one spot keep the order they were found in. */
function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => a.issue.line - b.issue.line || a.issue.column - b.issue.column || a.i - b.i)
    .map(({ issue }) => issue);
}

// ---------------------------------------------------------------------------------------
// YAML stage

function yamlIssue(error: YAMLError, at: Locator): ConfigIssue {
  const [start] = error.pos;
  if (error.code === "MULTIPLE_DOCS") {
    return at.issueAtOffset(
      start,
      "invalid YAML: expected one document, found more: remove the extra `---`",
    );
  }
  return at.issueAtOffset(start, `invalid YAML: ${sentence(error.message)}`);
}

/** Lower-cases the first letter (unless it starts an acronym) and drops a final period. */
function sentence(message: string): string {
  const text = message.trim().replace(/\.$/, "");
  return /^[A-Z][a-z]/.test(text) ? text[0]!.toLowerCase() + text.slice(1) : text;
}
