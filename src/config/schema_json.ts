/**
 * Generates `config.schema.json` (JSON Schema draft-07, for editors via
 * `# yaml-language-server: $schema=./config.schema.json`) from the zod schema.
 *
 * Run `deno task schema` after changing `schema.ts`; a test fails while the committed file
 * differs from what this produces.
 *
 * @module
 */
import { z } from "zod";
import { configSchema } from "./schema.ts";

/** Where the generated schema lives: the repository root. */
export const CONFIG_SCHEMA_JSON_URL: URL = new URL("../../config.schema.json", import.meta.url);

/**
 * Renders the JSON Schema of the config file as written (input side: durations as strings or
 * seconds, defaults as YAML would spell them).
 * @returns the file content, 2-space indented, with a final newline
 */
export function renderConfigJsonSchema(): string {
  const schema = z.toJSONSchema(configSchema, { io: "input", target: "draft-7" });
  return `${JSON.stringify(schema, null, 2)}\n`;
}

if (import.meta.main) {
  await Deno.writeTextFile(CONFIG_SCHEMA_JSON_URL, renderConfigJsonSchema());
}
