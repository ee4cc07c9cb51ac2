import assert from "node:assert/strict";
import { type Config, describeDiff, diffConfig, isEmptyDiff, parseConfig } from "./mod.ts";

function config(text: string): Config {
  const result = parseConfig(text, "config.yaml");
  if (!result.ok) throw new Error(result.issues.map((i) => i.message).join("; "));
  return result.config;
}

const BASE = `settings:
  logLevel: info
configurations:
  - name: x
    listenerAddress: "127.0.0.1:8001"
    backends: ["127.0.0.1:9001"]
  - name: y
    listenerAddress: "127.0.0.1:8002"
    backends: ["127.0.0.1:9002"]
`;

/** A case: `after` against {@linkcode BASE}; a list left out is expected empty. */
interface Row {
  readonly name: string;
  readonly after: string;
  readonly added?: string[];
  readonly removed?: string[];
  readonly rebound?: [string, string[]][];
  readonly changed?: [string, string[]][];
  readonly unchanged: string[];
  readonly settings?: string[];
  readonly line: string;
}

const ROWS: Row[] = [
  {
    name: "accepting PROXY protocol rebinds the listener on its own address",
    after: BASE.replace(
      `"127.0.0.1:9002"]`,
      `"127.0.0.1:9002"]\n    acceptProxyProtocol: true\n    trustedProxies: ["10.0.0.0/8"]`,
    ),
    rebound: [["y", ["acceptProxyProtocol", "trustedProxies"]]],
    unchanged: ["x"],
    line: "+0 listeners, -0, ~1 changed (y: acceptProxyProtocol, trustedProxies)",
  },
  {
    name: "identical text",
    after: BASE,
    unchanged: ["x", "y"],
    line: "+0 listeners, -0, ~0 changed",
  },
  {
    name: "defaults written out are no change",
    after: BASE.replace(
      `    backends: ["127.0.0.1:9001"]`,
      `    backends: ["127.0.0.1:9001"]\n    balancer: round_robin\n    idleTimeout: 1h`,
    ),
    unchanged: ["x", "y"],
    line: "+0 listeners, -0, ~0 changed",
  },
  {
    name: "a listener added, one changed in place, a setting",
    after: BASE.replace("logLevel: info", "logLevel: debug")
      .replace(`"127.0.0.1:9002"]`, `"127.0.0.1:9002"]\n    idleTimeout: 30s`) +
      `  - name: z\n    listenerAddress: "127.0.0.1:8003"\n    backends: ["127.0.0.1:9003"]\n`,
    added: ["z"],
    changed: [["y", ["idleTimeoutMs"]]],
    unchanged: ["x"],
    settings: ["logLevel"],
    line: "+1 listener (z), -0, ~1 changed (y: idleTimeout), settings: logLevel",
  },
  {
    name: "a listener removed",
    after: BASE.split("  - name: y")[0]!,
    removed: ["y"],
    unchanged: ["x"],
    line: "+0 listeners, -1 (y), ~0 changed",
  },
  {
    name: "a new address is a rebind, with other changes listed",
    after: BASE.replace("127.0.0.1:8001", "127.0.0.1:8011")
      .replace(`"127.0.0.1:9001"]`, `"127.0.0.1:9001"]\n    maxConnections: 5`),
    rebound: [["x", ["listenerAddress", "maxConnections"]]],
    unchanged: ["y"],
    line: "+0 listeners, -0, ~1 changed (x: listenerAddress, maxConnections)",
  },
  {
    name: "a renamed listener is a removal and an addition",
    after: BASE.replace("name: x", "name: w"),
    added: ["w"],
    removed: ["x"],
    unchanged: ["y"],
    line: "+1 listener (w), -1 (x), ~0 changed",
  },
  {
    name: "pool membership and health settings are changes too",
    after: BASE.replace(`["127.0.0.1:9001"]`, `["127.0.0.1:9001", "127.0.0.1:9011"]`)
      .replace(`"127.0.0.1:9002"]`, `"127.0.0.1:9002"]\n    healthCheck:\n      rise: 5`),
    changed: [["x", ["backends"]], ["y", ["healthCheck"]]],
    unchanged: [],
    line: "+0 listeners, -0, ~2 changed (x: backends; y: healthCheck)",
  },
  {
    name: "settings only",
    after: BASE.replace("logLevel: info", "logLevel: info\n  logFormat: json\n  kubeconfigPath: k"),
    unchanged: ["x", "y"],
    settings: ["kubeconfigPath", "logFormat"],
    line: "+0 listeners, -0, ~0 changed, settings: kubeconfigPath, logFormat",
  },
];

for (const row of ROWS) {
  Deno.test(`diffConfig: ${row.name}`, () => {
    const diff = diffConfig(config(BASE), config(row.after));
    const settings = row.settings ?? [];
    assert.deepEqual(diff.added.map((l) => l.name), row.added ?? []);
    assert.deepEqual(diff.removed.map((l) => l.name), row.removed ?? []);
    assert.deepEqual(diff.rebound.map((c) => [c.name, c.fields]), row.rebound ?? []);
    assert.deepEqual(diff.changed.map((c) => [c.name, c.fields]), row.changed ?? []);
    assert.deepEqual(diff.unchanged, row.unchanged);
    assert.deepEqual([...diff.settings].sort(), settings);
    assert.equal(isEmptyDiff(diff), row.unchanged.length === 2 && settings.length === 0);
    assert.equal(describeDiff(diff), row.line);
  });
}

Deno.test("diffConfig: before and after of a change are the configs' own objects", () => {
  const before = config(BASE);
  const after = config(
    BASE.replace(`"127.0.0.1:9002"]`, `"127.0.0.1:9002"]\n    balancer: maglev`),
  );
  const [change] = diffConfig(before, after).changed;
  assert.equal(change?.before, before.configurations[1]);
  assert.equal(change?.after, after.configurations[1]);
  assert.deepEqual(change?.fields, ["balancer"]);
});
