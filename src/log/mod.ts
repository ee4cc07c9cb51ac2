/**
 * Logging setup and the console/terminal output helpers. The only module that writes to
 * the console; every other module takes a logger from {@linkcode getLogger}.
 *
 * Log lines go to stderr (text or JSON lines); command output (tables, JSON) goes to stdout
 * through {@linkcode writeOut}.
 *
 * @module
 */
import {
  configure,
  getLogger as getLogtapeLogger,
  getTextFormatter,
  type Logger,
  type LogRecord,
  reset,
} from "@logtape/logtape";
import { formatJsonLine } from "./_json_lines.ts";

export type { Logger };

/** Minimum level a log line needs to be written. */
export type LogLevel = "trace" | "debug" | "info" | "warning" | "error" | "fatal";
/** Output style of log lines. */
export type LogFormat = "text" | "json";

/**
 * Category of the access log (`getLogger("access")`): written at `info` whatever the
 * configured level, since only listeners with `accessLog` write to it.
 */
export const ACCESS_LOG_CATEGORY: readonly string[] = ["nautiluslb", "access"];

/** Options of {@linkcode setupLogging}. */
export interface LoggingOptions {
  /** Least severe level written for `nautiluslb` loggers. @default {"info"} */
  readonly level?: LogLevel;
  /** `text` for people or `json` (one object per line) for collectors. @default {"text"} */
  readonly format?: LogFormat;
  /** Where lines go. @default {stderr} */
  readonly write?: (line: string) => void;
}

const encoder = new TextEncoder();

/** Writes text to stdout synchronously (command output, not logs). */
export function writeOut(text: string): void {
  writeAllSync(Deno.stdout, encoder.encode(text));
}

/** Writes text to stderr synchronously (usage errors and human hints, not logs). */
export function writeErr(text: string): void {
  writeAllSync(Deno.stderr, encoder.encode(text));
}

function writeAllSync(target: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += target.writeSync(bytes.subarray(offset));
}

/** True when stdout is an interactive terminal (progress output, colours). */
export function isStdoutTerminal(): boolean {
  return Deno.stdout.isTerminal();
}

/** True when stderr is an interactive terminal. */
export function isStderrTerminal(): boolean {
  return Deno.stderr.isTerminal();
}

/**
 * Configures the `nautiluslb` logger tree. Call once per process (again to reconfigure).
 * Sinks write synchronously so nothing is lost when the process exits.
 */
export async function setupLogging(options: LoggingOptions = {}): Promise<void> {
  const format = options.format ?? "text";
  const formatter: (r: LogRecord) => string = format === "json"
    ? formatJsonLine
    : getTextFormatter({
      timestamp: "date-time-tz",
      value: (v) => (typeof v === "string" ? v : Deno.inspect(v)),
    });
  const write = options.write ?? writeErr;
  await configure({
    reset: true,
    sinks: { out: (record: LogRecord) => write(formatter(record)) },
    loggers: [
      { category: ["nautiluslb"], lowestLevel: options.level ?? "info", sinks: ["out"] },
      // The access log is switched on per listener, not by level: its lines show whatever
      // `level` says, in the same format and on the same output.
      {
        category: [...ACCESS_LOG_CATEGORY],
        lowestLevel: "info",
        sinks: ["out"],
        parentSinks: "override",
      },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["out"] },
    ],
  });
}

/** Removes the logging configuration (tests). */
export async function resetLogging(): Promise<void> {
  await reset();
}

/** A logger under the `nautiluslb` category, e.g. `getLogger("proxy")`. */
export function getLogger(...category: string[]): Logger {
  return getLogtapeLogger(["nautiluslb", ...category]);
}
