/**
 * Problems found in a config file, their one-line form, and the error that carries them.
 *
 * @module
 */

/**
 * One problem (or warning) in a config file, pointing at the spot to fix.
 *
 * `line` and `column` are 1-based. `path` names the value in the document, e.g.
 * `configurations[1].listenerAddress`; it is `""` for document-level problems such as
 * YAML syntax errors.
 */
export interface ConfigIssue {
  /** File name as given by the caller, e.g. `config.yaml`. */
  readonly file: string;
  /** 1-based line. */
  readonly line: number;
  /** 1-based column. */
  readonly column: number;
  /** Where in the document, e.g. `configurations[1].port`; `""` for the whole document. */
  readonly path: string;
  /** What is wrong, lower case without a period, e.g. `port 70000 is out of range 1-65535`. */
  readonly message: string;
}

/**
 * Formats an issue as one line, in the style compilers use so editors can jump to it:
 * `FILE:LINE:COLUMN: PATH: message`, or `FILE:LINE:COLUMN: message` when `path` is empty.
 */
export function formatIssue(issue: ConfigIssue): string {
  const where = `${issue.file}:${issue.line}:${issue.column}`;
  return issue.path === ""
    ? `${where}: ${issue.message}`
    : `${where}: ${issue.path}: ${issue.message}`;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * Formats a document path the way JavaScript would index it:
 * `["configurations", 1, "serviceSelector", "app.kubernetes.io/name"]` becomes
 * `configurations[1].serviceSelector["app.kubernetes.io/name"]`.
 */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else if (typeof segment === "string" && IDENTIFIER.test(segment)) {
      text += text === "" ? segment : `.${segment}`;
    } else text += `[${JSON.stringify(String(segment))}]`;
  }
  return text;
}

/**
 * Thrown when a config file is readable but not a valid config. Carries every issue found;
 * `path`, `line` and `column` repeat those of the first one so a caller that reports a single
 * location has it at hand.
 */
export class ConfigError extends Error {
  /** Every problem found, in document order; never empty. */
  readonly issues: readonly ConfigIssue[];
  /** Path of the first issue (`""` for document-level problems). */
  readonly path: string;
  /** 1-based line of the first issue. */
  readonly line: number;
  /** 1-based column of the first issue. */
  readonly column: number;

  /**
   * The message names the first issue and counts the rest, e.g.
   * `Invalid config: FILE:LINE:COLUMN: PATH: message (and 2 more)`.
   *
   * @param issues the problems; must not be empty
   * @param options `cause`, when the problems come from a caught error
   * @throws {TypeError} when `issues` is empty
   */
  constructor(issues: readonly ConfigIssue[], options?: ErrorOptions) {
    const first = issues[0];
    if (first === undefined) {
      throw new TypeError("Cannot create ConfigError as 'issues' must not be empty");
    }
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : "";
    super(`Invalid config: ${formatIssue(first)}${more}`, options);
    this.name = "ConfigError";
    this.issues = issues;
    this.path = first.path;
    this.line = first.line;
    this.column = first.column;
  }
}
