/**
 * Wording shared by the schema and the parser, so every message reads the same:
 * keys in backticks, values as JSON, detail after a colon.
 *
 * @module
 */

/** Describes a parsed YAML value for "got ..." in messages: `a string ("x")`, `a list`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  switch (typeof value) {
    case "string":
      return `a string (${JSON.stringify(value)})`;
    case "number":
      return `a number (${value})`;
    case "boolean":
      return `a boolean (${value})`;
    case "object":
      return "a map";
    default:
      return typeof value;
  }
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "a boolean",
  object: "a map",
  record: "a map",
  array: "a list",
};

/** Names a zod `expected` type the way a YAML author thinks of it. */
export function describeType(expected: string): string {
  return TYPE_NAMES[expected] ?? expected;
}

/** `"a", "b" or "c"`. */
export function listValues(values: readonly string[]): string {
  const quoted = values.map((v) => JSON.stringify(v));
  return quoted.length <= 1
    ? quoted.join("")
    : `${quoted.slice(0, -1).join(", ")} or ${quoted[quoted.length - 1]}`;
}

/** Wraps a key name for messages: `` `listenerAddress` ``. */
export function key(name: string): string {
  return `\`${name}\``;
}
