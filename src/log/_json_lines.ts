/**
 * The JSON Lines log format: one object per record, with the message rendered as a person
 * reads it (strings unquoted) and the record's properties as structured data.
 *
 * @module
 */
import type { LogRecord } from "@logtape/logtape";

/**
 * One record as a JSON line:
 * `{"@timestamp":"…","level":"WARN","message":"Cannot reload x.yaml: …","logger":"nautiluslb.config","properties":{"path":"x.yaml"}}`.
 *
 * Unlike logtape's default, values inside `message` are not JSON-quoted (`file "a.yaml"`
 * read `file "\"a.yaml\""` before): a string is inserted as it is, an `Error` as its message,
 * anything else as JSON. Errors in `properties` become `{ name, message, cause? }` (no stack:
 * one line per record stays short; the text format prints stacks). A timestamp and level as
 * logtape writes them. Never throws.
 */
export function formatJsonLine(record: LogRecord): string {
  const level = record.level === "warning" ? "WARN" : record.level.toUpperCase();
  const line: Record<string, unknown> = {
    "@timestamp": new Date(record.timestamp).toISOString(),
    level,
    message: renderMessage(record.message),
    logger: record.category.join("."),
    properties: record.properties,
  };
  try {
    return `${JSON.stringify(line, replacer)}\n`;
  } catch {
    // A cycle or a throwing getter in the properties: keep the record, inspected.
    line.properties = Deno.inspect(record.properties, { depth: 4 });
    return `${JSON.stringify(line, replacer)}\n`;
  }
}

function renderMessage(parts: readonly unknown[]): string {
  let text = "";
  parts.forEach((part, i) => {
    text += i % 2 === 0 ? String(part) : messageValue(part);
  });
  return text;
}

function messageValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.message;
  if (value === undefined || typeof value === "bigint" || typeof value === "symbol") {
    return String(value);
  }
  return safeStringify(value);
}

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (!(value instanceof Error)) return value;
  const error: Record<string, unknown> = { name: value.name, message: value.message };
  if (value.cause !== undefined) error.cause = value.cause;
  return error;
}

/** `JSON.stringify` that survives cycles and throwing getters (then inspected). */
function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value, replacer) ?? String(value);
  } catch {
    return Deno.inspect(value, { depth: 4 });
  }
}
