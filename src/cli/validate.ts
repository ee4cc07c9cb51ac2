/**
 * `nautiluslb validate [FILE]`: every config problem at once, as `FILE:LINE:COLUMN: PATH: message`.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { ConfigError, type ConfigIssue, formatIssue, loadConfigFile } from "../config/mod.ts";
import { writeOut } from "../log/mod.ts";
import { EXIT_BAD, EXIT_OK } from "./_errors.ts";
import { configLoadError, globalsOf, parseOutput } from "./_common.ts";

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
    .addHelpText(
      "after",
      "\nExamples:\n  nautiluslb validate config.yaml\n  nautiluslb validate -o json config.yaml",
    )
    .action(async (file, options, command) => {
      const output = parseOutput(options.output, ["text", "json"]);
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
        writeOut(issues.map((i) => formatIssue(i) + "\n").join(""));
      }
      setExit(issues.length === 0 ? EXIT_OK : EXIT_BAD);
    });
}
