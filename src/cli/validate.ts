/**
 * `nautiluslb validate [FILE]`: every config problem at once, as `FILE:LINE:COLUMN: PATH: message`.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { ConfigError, type ConfigIssue, formatIssue, loadConfigFile } from "../config/mod.ts";
import { writeOut } from "../log/mod.ts";
import { CliError, EXIT_BAD, EXIT_OK, EXIT_USAGE } from "./_errors.ts";
import { configLoadError, globalsOf, parseOutput } from "./_common.ts";

/** Problems `validate` prints as text unless `--max-problems` says otherwise. */
export const DEFAULT_MAX_PROBLEMS = 100;

/**
 * Adds `validate` to the program.
 * @param signal stops waiting for and reading the file (SIGINT/SIGTERM); exit 2 then
 */
export function addValidateCommand(
  program: Command,
  setExit: (code: number) => void,
  signal?: AbortSignal,
): void {
  program.command("validate")
    .description("check a config file and report every problem with file:line:column")
    .argument("[file]", "config file (default: --config)")
    .option("-o, --output <format>", "text or json", "text")
    .option(
      "--max-problems <n>",
      "problems printed as text, then how many more (0 for all; json prints all)",
      String(DEFAULT_MAX_PROBLEMS),
    )
    .addHelpText(
      "after",
      "\nExamples:\n  nautiluslb validate config.yaml\n  nautiluslb validate -o json config.yaml\n" +
        "  nautiluslb validate --max-problems 0 config.yaml",
    )
    .action(async (file, options, command) => {
      const output = parseOutput(options.output, ["text", "json"]);
      const maxProblems = parseMaxProblems(options.maxProblems);
      const path = file ?? globalsOf(command).config;
      let issues: readonly ConfigIssue[] = [];
      let warnings: readonly ConfigIssue[] = [];
      try {
        ({ warnings } = await loadConfigFile(path, { signal }));
      } catch (error) {
        if (!(error instanceof ConfigError)) throw configLoadError(path, error, signal);
        issues = error.issues;
      }
      if (output === "json") {
        writeOut(JSON.stringify(issues, null, 2) + "\n");
      } else if (issues.length === 0) {
        for (const w of warnings) writeOut(`${formatIssue(w)} (warning)\n`);
        writeOut(`${path}: ok\n`);
      } else {
        const shown = maxProblems === 0 ? issues : issues.slice(0, maxProblems);
        writeOut(shown.map((i) => formatIssue(i) + "\n").join(""));
        const more = issues.length - shown.length;
        if (more > 0) {
          writeOut(
            `... and ${more} more problem(s), ${issues.length} in all ` +
              `(--max-problems 0 prints all)\n`,
          );
        }
      }
      setExit(issues.length === 0 ? EXIT_OK : EXIT_BAD);
    });
}

/** Checks a `--max-problems` value: a whole number, 0 for no limit. @throws {CliError} usage error */
function parseMaxProblems(value: string): number {
  const n = Number(value);
  if (/^\d+$/.test(value) && Number.isSafeInteger(n)) return n;
  throw new CliError(
    `Cannot use --max-problems "${value}": expected a whole number (0 prints every problem)`,
    EXIT_USAGE,
  );
}
