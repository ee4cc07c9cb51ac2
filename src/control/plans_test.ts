import assert from "node:assert/strict";
import { parseConfig } from "../config/mod.ts";
import { createBalancer } from "../balancer/mod.ts";
import { Pool } from "../pool/mod.ts";
import { EMPTY_INVENTORY } from "../core/inventory.ts";
import { healthTargetsOf } from "../resolve/mod.ts";
import { plansFrom, selectListeners, staticPlans, withFingerprints } from "./plans.ts";
import { backendsOf } from "../core/plan.ts";

const CONFIG = `
configurations:
  - name: sticky
    listenerAddress: "127.0.0.1:8082"
    balancer: maglev
    maglev: { seed: 7 }
    backends: ["127.0.0.1:9001", { address: "127.0.0.1:9002", weight: 2 }, "127.0.0.1:9003"]
  - name: plain
    listenerAddress: "127.0.0.1:8080"
    backends: ["127.0.0.1:9001"]
  - name: web
    listenerAddress: ":80"
    backendPortName: http
    namespace: development
`;

function config() {
  const result = parseConfig(CONFIG, "test.yaml");
  assert.ok(result.ok);
  return result.config;
}

Deno.test("withFingerprints gives the fingerprint a live Maglev pool computes", () => {
  const listeners = config().configurations.slice(0, 2);
  const [sticky, plain] = withFingerprints(staticPlans(listeners), listeners);
  assert.equal(plain!.fingerprint, undefined);
  assert.match(sticky!.fingerprint!, /^[0-9a-f]{16}$/);
  const pool = new Pool({
    name: "sticky",
    balancer: createBalancer("maglev", { maglevSeed: 7, maglevTableSize: 65537 }),
  });
  // A replica that learns the same backends in another order agrees.
  pool.update(backendsOf(sticky!).reverse());
  assert.equal(pool.fingerprint(), sticky!.fingerprint);
  pool.close();
});

Deno.test("withFingerprints changes with the seed", () => {
  const listeners = config().configurations.slice(0, 1);
  const a = withFingerprints(staticPlans(listeners), listeners)[0]!.fingerprint;
  const b = withFingerprints(staticPlans(listeners), [{ ...listeners[0]!, maglevSeed: 8 }])[0]!
    .fingerprint;
  assert.notEqual(a, b);
});

Deno.test("selectListeners keeps listeners of the namespace and those without one", () => {
  const names = (ns?: string) => selectListeners(config(), { namespace: ns }).map((l) => l.name);
  assert.deepEqual(names(), ["sticky", "plain", "web"]);
  assert.deepEqual(names("development"), ["sticky", "plain", "web"]);
  assert.deepEqual(names("production"), ["sticky", "plain"]);
});

Deno.test("plansFrom gives source warnings to Kubernetes pools as input warnings", () => {
  const listeners = config().configurations;
  const plans = plansFrom(EMPTY_INVENTORY, listeners, ["a.yaml: no Kubernetes object"]);
  assert.deepEqual(plans.map((p) => [p.name, p.inputWarnings]), [
    ["sticky", []],
    ["plain", []],
    ["web", ["a.yaml: no Kubernetes object"]],
  ]);
  // Pool warnings stay the pool's own.
  assert.deepEqual(plans[2]!.warnings, [
    'No annotated Service in namespace "development" has a port named "http"',
  ]);
});

Deno.test("plansFrom plans health targets with the listener's check", () => {
  const listeners = config().configurations;
  const plans = plansFrom(EMPTY_INVENTORY, listeners);
  assert.deepEqual(
    healthTargetsOf(plans).map((t) => [t.pool, t.key, t.check]),
    [
      ["sticky", "127.0.0.1:9001", listeners[0]!.healthCheck],
      ["sticky", "127.0.0.1:9002", listeners[0]!.healthCheck],
      ["sticky", "127.0.0.1:9003", listeners[0]!.healthCheck],
      ["plain", "127.0.0.1:9001", listeners[1]!.healthCheck],
    ],
  );
});
