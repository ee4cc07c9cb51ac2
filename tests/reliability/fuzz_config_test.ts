/**
 * Property tests of config parsing against hostile input: arbitrary structures written as
 * YAML, arbitrary text, every truncation of the shipped configs, and alias bombs.
 *
 * The contract under test (see `parseConfig`): it never throws, returns in bounded time, and
 * every issue it reports names the file and a 1-based line and column inside the text.
 *
 * Runs are seeded, so a failure reproduces: fast-check prints the seed and the shrunk
 * counterexample's path; rerun with `FUZZ_SEED=<seed>` (and optionally `FUZZ_RUNS=<n>` for a
 * longer search), e.g. `FUZZ_SEED=42 deno test --allow-all tests/reliability/`.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { stringify } from "yaml";
import { type ConfigIssue, parseConfig, type ParseResult } from "../../src/config/mod.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20_261_201);
const RUNS_FACTOR = Number(Deno.env.get("FUZZ_RUNS") ?? 1);
const ROOT = new URL("../../", import.meta.url);
const FILE = "fuzz.yaml";
/** Far above what any input here needs unloaded (a few ms); catches a hang or blow-up. */
const MAX_PARSE_MS = 5_000;

function options(numRuns: number): fc.Parameters<unknown> {
  return { seed: SEED, numRuns: Math.max(1, Math.round(numRuns * RUNS_FACTOR)) };
}

/** Parses `text`, checking the contract; returns the result for further checks. */
function parseChecked(text: string): ParseResult {
  const started = performance.now();
  const result = parseConfig(text, FILE);
  const elapsedMs = performance.now() - started;
  assert.ok(elapsedMs < MAX_PARSE_MS, `parseConfig took ${elapsedMs.toFixed(0)} ms`);
  const lineCount = text.split(/\r\n|\r|\n/).length;
  const issues = result.ok ? result.warnings : result.issues;
  if (!result.ok) assert.ok(result.issues.length > 0, "a failed parse reports no issue");
  for (const issue of issues) assertLocated(issue, lineCount);
  return result;
}

function assertLocated(issue: ConfigIssue, lineCount: number): void {
  const where = JSON.stringify(issue);
  assert.equal(issue.file, FILE, where);
  assert.ok(Number.isInteger(issue.line) && issue.line >= 1, where);
  // The line may be one past the last for a problem at the very end of the text.
  assert.ok(issue.line <= lineCount + 1, where);
  assert.ok(Number.isInteger(issue.column) && issue.column >= 1, where);
  assert.equal(typeof issue.message, "string", where);
  assert.ok(issue.message.length > 0, where);
  assert.ok(!/maximum call stack|undefined is not|cannot read prop/i.test(issue.message), where);
}

const LISTENER_KEYS = [
  "name",
  "listenerAddress",
  "backendPortName",
  "namespace",
  "service",
  "serviceSelector",
  "backendMode",
  "nodeAddressTypes",
  "excludeCordonedNodes",
  "backends",
  "balancer",
  "maglev",
  "requestTimeout",
  "connectTimeout",
  "idleTimeout",
  "maxConnections",
  "maxConnectAttempts",
  "drainTimeout",
  "onRemoval",
  "whenAllUnhealthy",
  "healthCheck",
  "listenAddress",
];

/** Values as odd as YAML can carry: huge and tiny numbers, odd strings, nesting. */
const oddValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(
      null,
      true,
      0,
      -1,
      1e308,
      -1e308,
      5e-324,
      2 ** 53 + 1,
      "",
      ":80",
      "[::1]:65535",
      "0.0.0.0:0",
      "5s",
      "1h30m",
      "-5s",
      "maglev",
      "http",
      "~",
      "*",
      "&a",
      "\u0000",
      "\ufeff",
      "é".repeat(20),
    ),
    fc.integer(),
    fc.double(),
    fc.string({ maxLength: 40 }),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 12 }), tie("value"), { maxKeys: 4 }),
  ),
})).value;

const listenerLike = fc.dictionary(fc.constantFrom(...LISTENER_KEYS), oddValue, {
  maxKeys: 8,
});

const configLike = fc.record(
  {
    settings: fc.dictionary(
      fc.constantFrom("kubeconfigPath", "logLevel", "logFormat", "adminAddress", "shutdownDelay"),
      oddValue,
      { maxKeys: 5 },
    ),
    configurations: fc.oneof(fc.array(listenerLike, { maxLength: 4 }), oddValue),
  },
  { requiredKeys: [] },
);

Deno.test("fuzz: config-shaped structures written as YAML parse within the contract", () => {
  fc.assert(
    fc.property(configLike, (data) => {
      parseChecked(stringify(data));
    }),
    options(400),
  );
});

Deno.test("fuzz: arbitrary structures written as YAML parse within the contract", () => {
  fc.assert(
    fc.property(fc.anything({ maxDepth: 4, maxKeys: 5 }), (data) => {
      let text: string | undefined;
      try {
        text = stringify(data);
      } catch {
        // Not representable as YAML (e.g. a symbol): nothing to parse.
      }
      if (typeof text === "string") parseChecked(text);
    }),
    options(300),
  );
});

Deno.test("fuzz: arbitrary text and bytes parse within the contract", () => {
  const yamlish = fc.array(
    fc.constantFrom(
      "configurations:",
      "\n",
      "  - ",
      "    ",
      "\t",
      "name: x",
      'listenerAddress: ":80"',
      "&a ",
      "*a",
      "<<: ",
      "[",
      "]",
      "{",
      "}",
      ",",
      "? ",
      ": ",
      "|",
      ">-",
      "---",
      "...",
      "%YAML 1.2",
      "!!str ",
      "!tag ",
      '"',
      "'",
      "#",
      "\\",
      "\u0000",
      "\r",
    ),
    { maxLength: 60 },
  ).map((parts) => parts.join(""));
  const bytes = fc.uint8Array({ maxLength: 300 }).map((b) => new TextDecoder().decode(b));
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 300 }), yamlish, bytes), (text) => {
      parseChecked(text);
    }),
    options(1_500),
  );
});

async function shippedConfigs(): Promise<{ name: string; text: string }[]> {
  const names = ["config.yaml", "examples/demo.yaml"];
  for await (const entry of Deno.readDir(new URL("examples/invalid/", ROOT))) {
    if (entry.isFile && entry.name.endsWith(".yaml")) names.push(`examples/invalid/${entry.name}`);
  }
  return await Promise.all(
    names.sort().map(async (name) => ({
      name,
      text: await Deno.readTextFile(new URL(name, ROOT)),
    })),
  );
}

Deno.test("fuzz: every truncation of the shipped configs parses within the contract", async () => {
  let count = 0;
  for (const { name, text } of await shippedConfigs()) {
    for (let end = 0; end <= text.length; end++) {
      try {
        parseChecked(text.slice(0, end));
      } catch (error) {
        throw new Error(`Failed at ${name} cut at offset ${end}`, { cause: error });
      }
      count++;
    }
  }
  assert.ok(count > 5_000, `only ${count} truncations`);
});

/**
 * A "billion laughs" document: `depth` levels, each a list of `fanOut` aliases of the level
 * below, optionally placed where a listener expects a value.
 */
function aliasBomb(depth: number, fanOut: number, inListener: boolean): string {
  const lines = ["x0: &a0 [lol, lol]"];
  for (let level = 1; level <= depth; level++) {
    lines.push(`x${level}: &a${level} [${Array(fanOut).fill(`*a${level - 1}`).join(", ")}]`);
  }
  if (inListener) {
    lines.push("configurations:", "  - name: web", '    listenerAddress: ":80"');
    lines.push(`    backends: *a${depth}`);
  }
  return lines.join("\n") + "\n";
}

Deno.test("fuzz: alias bombs are rejected in bounded time with a located error", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 2, max: 30 }),
      fc.boolean(),
      (depth, fanOut, inListener) => {
        const result = parseChecked(aliasBomb(depth, fanOut, inListener));
        assert.equal(result.ok, false);
        // Whether or not it is a bomb, the aliases resolved without exhausting anything.
        const expansion = fanOut ** depth;
        if (!result.ok && expansion > 1_000_000) {
          assert.ok(
            result.issues.some((i) => /aliases expand to more than/.test(i.message)),
            JSON.stringify(result.issues.slice(0, 3)),
          );
        }
      },
    ),
    options(60),
  );
});

Deno.test("fuzz: recursive aliases are reported, never followed", () => {
  fc.assert(
    fc.property(
      fc.constantFrom("[", "{ k: "),
      fc.integer({ min: 0, max: 5 }),
      (open, nesting) => {
        const close = open === "[" ? "]" : " }";
        const inner = open.repeat(nesting) + "*loop" + close.repeat(nesting);
        const text = `x: &loop ${open}${inner}${close}\nconfigurations: []\n`;
        const result = parseChecked(text);
        assert.equal(result.ok, false);
        if (!result.ok) {
          assert.ok(
            result.issues.some((i) => /refers to a value that contains it/.test(i.message)),
            JSON.stringify(result.issues),
          );
        }
      },
    ),
    options(30),
  );
});
