import assert from "node:assert/strict";
import { CONFIG_SCHEMA_JSON_URL, renderConfigJsonSchema } from "./schema_json.ts";

Deno.test("config.schema.json is what `deno task schema` generates now", async () => {
  const committed = await Deno.readTextFile(CONFIG_SCHEMA_JSON_URL);
  assert.equal(committed, renderConfigJsonSchema(), "run `deno task schema` and commit the result");
});

Deno.test("config.schema.json states the defaults and rejects unknown keys", () => {
  const schema = JSON.parse(renderConfigJsonSchema());
  const listener = schema.properties.configurations.items;
  assert.equal(schema.additionalProperties, false);
  assert.equal(listener.additionalProperties, false);
  assert.deepEqual(listener.required, ["name", "listenerAddress"]);
  assert.equal(listener.properties.requestTimeout.default, "5s");
  assert.equal(listener.properties.connectTimeout.default, "2s");
  assert.equal(listener.properties.idleTimeout.default, "1h");
  assert.equal(listener.properties.maxConnections.default, 10000);
  assert.equal(listener.properties.healthCheck.properties.interval.default, "2s");
  assert.equal(schema.properties.settings.properties.adminAddress.default, "127.0.0.1:9090");
});
