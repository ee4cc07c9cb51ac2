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

/**
 * Drops map entries written without a value (`key:`), so they read as absent. Returns `value`
 * itself where nothing below it changes, and a copy of each map or list that does.
 */
export function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item = withoutNulls(value[i]);
      if (item !== value[i]) (out ??= value.slice())[i] = item;
    }
    return out ?? value;
  }
  if (isRawMap(value)) {
    let out: RawMap | undefined;
    for (const k in value) {
      const v = value[k];
      if (v === null) {
        out ??= { ...value };
        delete out[k];
        continue;
      }
      const kept = withoutNulls(v);
      if (kept !== v) {
        // Defined, not assigned: assigning `__proto__` would set the prototype instead.
        Object.defineProperty(out ??= { ...value }, k, {
          value: kept,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      }
    }
    return out ?? value;
  }
  return value;
}

/** Whether `value` is a YAML map (not a list, not `null`). */
export function isRawMap(value: unknown): value is RawMap {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
