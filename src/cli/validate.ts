/**
 * `nautiluslb validate [FILE]`: every config problem at once, as `FILE:LINE:COLUMN: PATH: message`.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { formatIssue, parseConfig } from "../config/mod.ts";
import { writeOut } from "../log/mod.ts";
import { CliError, EXIT_BAD, EXIT_OK, EXIT_USAGE } from "./_errors.ts";
import { globalsOf, parseOutput } from "./_common.ts";

/** Adds `validate` to the program. */
export function addValidateCommand(program: Command, setExit: (code: number) => void): void {
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
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (error) {
        throw new CliError(
          `Cannot read config ${path}: ${error instanceof Error ? error.message : error}`,
          EXIT_USAGE,
          { cause: error },
        );
      }
      const result = parseConfig(text, path);
      const issues = result.ok ? [] : result.issues;
      const warnings = result.ok ? result.warnings : [];
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
