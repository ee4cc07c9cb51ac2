/**
 * zod issues worded and located as {@linkcode ConfigIssue}s: messages for the issues the
 * schema does not word itself, union branches narrowed to the one that got furthest, missing
 * keys and values told apart.
 *
 * @module
 */
import type { z } from "zod";
import type { ConfigIssue } from "./issue.ts";
import type { Locator } from "./_locate.ts";
import { describeType, describeValue, key, listValues } from "./_messages.ts";
import type { Path } from "./_raw.ts";
import { unknownKeyMessage } from "./_unknown_key.ts";

/** Messages for issues the schema does not word itself. */
export function fallbackMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      return `expected ${describeType(issue.expected)}, got ${describeValue(issue.input)}`;
    case "invalid_value":
      return `expected one of ${listValues(issue.values.map(String))}, got ${
        describeValue(issue.input)
      }`;
    case "too_small":
      return issue.origin === "array"
        ? `expected at least ${issue.minimum} item(s)`
        : `must be at least ${issue.minimum}, got ${describeValue(issue.input)}`;
    case "too_big":
      return issue.origin === "array"
        ? `expected at most ${issue.maximum} item(s)`
        : `must be at most ${issue.maximum}, got ${describeValue(issue.input)}`;
    default:
      return undefined;
  }
}

/**
 * One zod issue as located config issues (several for unknown keys and narrowed unions).
 * @param base the path of the value the schema checked, before the issue's own path
 */
export function schemaIssues(issue: z.core.$ZodIssue, base: Path, at: Locator): ConfigIssue[] {
  const path = [...base, ...issue.path];
  switch (issue.code) {
    case "invalid_union": {
      // A union branch that failed only because the value has another type is noise; if
      // exactly one branch got further, its problems are the real ones.
      const further = issue.errors.filter((branch) =>
        !branch.every((i) => i.code === "invalid_type" && i.path.length === 0)
      );
      if (further.length === 1) return further[0]!.flatMap((i) => schemaIssues(i, path, at));
      return [at.issue(path, issue.message)];
    }
    case "unrecognized_keys":
      return issue.keys.map((k) => at.issue([...path, k], unknownKeyMessage(path, k), "key"));
    case "invalid_type": {
      if (issue.input !== undefined || path.length === 0) return [at.issue(path, issue.message)];
      const name = String(path[path.length - 1]);
      if (at.has(path)) return [at.issue(path, `missing value for ${key(name)}`, "key")];
      return [at.issue(path.slice(0, -1), `missing required key ${key(name)}`)];
    }
    case "custom":
      return [at.issue(path, issue.message, issue.params?.target === "key" ? "key" : "value")];
    default:
      return [at.issue(path, issue.message)];
  }
}
