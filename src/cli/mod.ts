/**
 * The command table: `serve`, `discover`, `check`, `validate`, with global options, help
 * examples and the mapping of errors to exit codes.
 *
 * @module
 */
import { Command, CommanderError } from "@commander-js/extra-typings";
import { getLogger, writeErr, writeOut } from "../log/mod.ts";
import { CliError, EXIT_BAD, EXIT_OK, EXIT_USAGE } from "./_errors.ts";
import { addCheckCommand } from "./check.ts";
import { addDiscoverCommand } from "./discover.ts";
import { addServeCommand } from "./serve.ts";
import { addValidateCommand } from "./validate.ts";
import { VERSION } from "../core/version.ts";

export { CliError, EXIT_BAD, EXIT_OK, EXIT_USAGE };

/** The version printed by `--version`. */
export { VERSION };

/** Options of {@linkcode run}. */
export interface RunOptions {
  /** Aborts long-running commands (serve, --watch); wired to SIGINT/SIGTERM by default. */
  readonly signal?: AbortSignal;
  /** Called on a second SIGINT/SIGTERM while the first is being handled. */
  readonly onForceExit?: (signal: Deno.Signal) => void;
}

/**
 * Runs the CLI with `args` (without the program name) and returns the exit code.
 * Never calls `Deno.exit`: the entry point does.
 */
export async function run(args: readonly string[], options: RunOptions = {}): Promise<number> {
  let exitCode = EXIT_OK;
  const setExit = (code: number) => exitCode = code;
  const controller = new AbortController();
  const stopSignals = options.signal === undefined
    ? listenForSignals(controller, options.onForceExit)
    : () => {};
  options.signal?.addEventListener("abort", () => controller.abort(), { once: true });
  const signal = controller.signal;

  const program = new Command()
    .name("nautiluslb")
    .description("Layer-4 (TCP) load balancer for Kubernetes Services")
    .version(VERSION, "-V, --version")
    .option("-c, --config <file>", "config file", "./config.yaml")
    .option("--log-level <level>", "trace, debug, info, warning, error or fatal")
    .option("--log-format <format>", "text or json")
    .showHelpAfterError("(run with --help for usage)")
    // Every subcommand's --help lists -c, --log-level and --log-format too (inherited).
    .configureHelp({ showGlobalOptions: true })
    .exitOverride()
    .configureOutput({ writeOut, writeErr, outputError: (text, write) => write(text) })
    .addHelpText(
      "after",
      "\nWithout arguments: nautiluslb serve -c ./config.yaml\n\nExamples:\n  nautiluslb validate config.yaml\n  nautiluslb discover --namespace development\n" +
        "  nautiluslb check\n  nautiluslb serve --dry-run\n\n" +
        "Exit codes: 0 ok, 1 the checked thing is bad, 2 usage error or unreadable input",
    );
  // Subcommands inherit exitOverride and output settings when added through `.command()`.
  addServeCommand(program as unknown as Command, setExit, signal);
  addDiscoverCommand(program as unknown as Command, setExit, signal);
  addCheckCommand(program as unknown as Command, setExit, signal);
  addValidateCommand(program as unknown as Command, setExit, signal);

  try {
    // No arguments: the original's only invocation, `serve` with ./config.yaml.
    await program.parseAsync(args.length === 0 ? ["serve"] : [...args], { from: "user" });
    return exitCode;
  } catch (error) {
    return handleError(error);
  } finally {
    stopSignals();
  }
}

function handleError(error: unknown): number {
  if (error instanceof CommanderError) {
    if (
      error.code === "commander.helpDisplayed" || error.code === "commander.version" ||
      error.code === "commander.help"
    ) return EXIT_OK;
    return EXIT_USAGE;
  }
  if (error instanceof CliError) {
    writeErr(`nautiluslb: ${error.message}\n`);
    return error.exitCode;
  }
  getLogger().fatal("Unexpected error: {error}", { error });
  writeErr(
    `nautiluslb: unexpected error: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  return EXIT_BAD;
}

function listenForSignals(
  controller: AbortController,
  onForceExit?: (signal: Deno.Signal) => void,
): () => void {
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const handlers = signals.map((signal) => {
    const handler = () => {
      if (controller.signal.aborted) {
        onForceExit?.(signal);
        return;
      }
      controller.abort(new Deno.errors.Interrupted(`${signal} received`));
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  };
}
