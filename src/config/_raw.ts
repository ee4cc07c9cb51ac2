/**
 * The untyped data of a config document, as the checks that run before (or beside) the schema
 * read it.
 *
 * @module
 */

/** A path into the document: map keys and list indices. */
export type Path = readonly PropertyKey[];
/** A YAML map as plain data. */
export type RawMap = Record<string, unknown>;

/** Drops map entries written without a value (`key:`), so they read as absent. */
export function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (isRawMap(value)) {
    const out: RawMap = {};
    for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = withoutNulls(v);
    return out;
  }
  return value;
}

/** Whether `value` is a YAML map (not a list, not `null`). */
export function isRawMap(value: unknown): value is RawMap {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
