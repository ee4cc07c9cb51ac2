/**
 * Parses durations as written in config: `"250ms"`, `"5s"`, `"1m"`, `"1h"`, `"1m30s"`, or a
 * plain number of seconds (`5`, `0.5`, `"5"`), as the original NautilusLB config used.
 *
 * @module
 */

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;

/**
 * Converts a duration to milliseconds.
 * @param value a non-negative number of seconds or a string like `"1m30s"`
 * @returns whole milliseconds (rounded)
 * @throws {SyntaxError} when `value` is not a duration
 */
export function parseDurationMs(value: string | number): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) {
      throw new SyntaxError(`Cannot parse duration: ${value} is not a non-negative number`);
    }
    return Math.round(value * 1000);
  }
  const text = value.trim();
  if (/^\d+(?:\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  if (text === "") throw new SyntaxError(`Cannot parse duration: empty string`);
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const start = PART.lastIndex;
    const match = PART.exec(text);
    if (match === null || match.index !== start) {
      throw new SyntaxError(
        `Cannot parse duration "${value}": expected a number with a unit (ms, s, m, h), e.g. "5s" or "250ms"`,
      );
    }
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
  }
  return Math.round(total);
}

/** Formats milliseconds compactly for humans: `250ms`, `5s`, `1m30s`, `2h`. */
export function formatDurationMs(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms % 1000 !== 0) return `${ms / 1000}s`;
  let s = ms / 1000;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ""}${m ? `${m}m` : ""}${s ? `${s}s` : ""}`;
}
