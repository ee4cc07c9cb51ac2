import assert from "node:assert/strict";
import { ConfigError, type ConfigIssue, formatIssue, formatPath } from "./mod.ts";

const ISSUE: ConfigIssue = {
  file: "config.yaml",
  line: 12,
  column: 7,
  path: "configurations[1].listenerAddress",
  message: "port 70000 is out of range 1-65535",
};

Deno.test("formatIssue() writes FILE:LINE:COLUMN: PATH: message", () => {
  assert.equal(
    formatIssue(ISSUE),
    "config.yaml:12:7: configurations[1].listenerAddress: port 70000 is out of range 1-65535",
  );
  assert.equal(
    formatIssue({
      ...ISSUE,
      path: "",
      message: "invalid YAML: tab characters must not be used in indentation",
    }),
    "config.yaml:12:7: invalid YAML: tab characters must not be used in indentation",
  );
});

Deno.test("formatPath() indexes like JavaScript", () => {
  const cases: readonly [readonly PropertyKey[], string][] = [
    [[], ""],
    [["settings"], "settings"],
    [["configurations", 1, "listenerAddress"], "configurations[1].listenerAddress"],
    [["configurations", 0, "backends", 2], "configurations[0].backends[2]"],
    [["serviceSelector", "app.kubernetes.io/name"], 'serviceSelector["app.kubernetes.io/name"]'],
  ];
  for (const [path, expected] of cases) assert.equal(formatPath(path), expected);
});

Deno.test("ConfigError carries every issue and the first one's location", () => {
  const second = { ...ISSUE, line: 14, path: "configurations[2].name" };
  const cause = new Error("underlying");
  const error = new ConfigError([ISSUE, second], { cause });
  assert.ok(error instanceof Error);
  assert.equal(error.name, "ConfigError");
  assert.deepEqual(error.issues, [ISSUE, second]);
  assert.equal(error.path, ISSUE.path);
  assert.equal(error.line, 12);
  assert.equal(error.column, 7);
  assert.equal(error.cause, cause);
  assert.equal(
    error.message,
    "Invalid config: config.yaml:12:7: configurations[1].listenerAddress: port 70000 is out of range 1-65535 (and 1 more)",
  );
});

Deno.test("ConfigError refuses an empty issue list", () => {
  assert.throws(() => new ConfigError([]), TypeError);
});
