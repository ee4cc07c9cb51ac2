import assert from "node:assert/strict";
import { parse as parseYamlText } from "yaml";
import { parseConfig } from "../config/mod.ts";
import { type BackendHealthReport, renderPlans } from "./_render.ts";
import { staticPlans, withFingerprints } from "../control/mod.ts";

Deno.test("renderPlans() -o yaml holds what -o json holds, read back by another YAML parser", () => {
  const result = parseConfig(
    `configurations:
  - name: sticky
    listenerAddress: "127.0.0.1:8082"
    balancer: maglev
    backends: ["127.0.0.1:9001", { address: "[::1]:9002", weight: 2 }, "yes:9003"]
  - name: "on"
    listenerAddress: "127.0.0.1:8080"
    backends: ["127.0.0.1:9001"]
`,
    "render.yaml",
  );
  assert.ok(result.ok);
  const listeners = result.config.configurations;
  const plans = withFingerprints(staticPlans(listeners), listeners);
  const health = new Map<string, BackendHealthReport>([
    ["127.0.0.1:9001", { state: "unhealthy", latencyMs: 3, error: "refused: 'x' #1" }],
  ]);
  const json = JSON.parse(renderPlans(plans, { format: "json", health }));
  assert.equal(json.pools.length, 2);
  assert.deepEqual(parseYamlText(renderPlans(plans, { format: "yaml", health })), json);
});
