import assert from "node:assert/strict";
import fc from "fast-check";
import {
  Document,
  isMap,
  isScalar,
  isSeq,
  type Node as YamlNode,
  parse as oracleParse,
  parseDocument,
  visit,
} from "yaml";
import {
  DEFAULT_MAX_ALIAS_EXPANSION,
  DEFAULT_MAX_NESTING_DEPTH,
  parseYaml,
  type SourceEntry,
  type SourceNode,
} from "./yaml.ts";

/** `[line, column]` (1-based) of `offset` in `text`. */
function lineColumn(text: string, offset: number): [number, number] {
  const before = text.slice(0, offset).split(/\r\n|\r|\n/);
  return [before.length, before.at(-1)!.length + 1];
}

function at(node: SourceNode | undefined, ...path: (string | number)[]): SourceNode {
  let n = node;
  for (const segment of path) {
    if (n?.target !== undefined) n = n.target;
    n = typeof segment === "number" ? n?.items?.[segment] : n?.entries?.get(segment)?.value;
  }
  assert.ok(n, `no node at ${path.join(".")}`);
  return n;
}

Deno.test("parseYaml() gives data and the position of every value and key", () => {
  const text = [
    "# a comment",
    "settings:",
    "  logLevel: info   # trailing",
    "configurations:",
    "  - name: web",
    '    backends: ["10.0.0.1:80", { address: "10.0.0.2:80", weight: 3 }]',
    "  -",
    "  - name:",
    "    listenerAddress: >-",
    "      folded",
    "      text",
    "    healthCheck:",
    "",
    "      interval: 2s",
    "",
  ].join("\n");
  const { data, root, problems } = parseYaml(text);
  assert.deepEqual(problems, []);
  assert.deepEqual(data, {
    settings: { logLevel: "info" },
    configurations: [
      {
        name: "web",
        backends: ["10.0.0.1:80", { address: "10.0.0.2:80", weight: 3 }],
      },
      null,
      { name: null, listenerAddress: "folded text", healthCheck: { interval: "2s" } },
    ],
  });
  const pos = (...path: (string | number)[]) => lineColumn(text, at(root(), ...path).start);
  assert.deepEqual(pos("settings", "logLevel"), [3, 13]);
  assert.deepEqual(pos("configurations", 0), [5, 5]);
  assert.deepEqual(pos("configurations", 0, "backends", 1, "weight"), [6, 65]);
  assert.deepEqual(pos("configurations", 2, "listenerAddress"), [9, 22]);
  assert.deepEqual(pos("configurations", 2, "healthCheck", "interval"), [14, 17]);
  const entry = at(root(), "configurations", 2).entries!.get("healthCheck")!;
  assert.deepEqual(lineColumn(text, entry.keyStart), [12, 5]);
  // An empty value points at its key.
  const name = at(root(), "configurations", 2).entries!.get("name")!;
  assert.deepEqual(lineColumn(text, name.value.start), [8, 5]);
});

Deno.test("parseYaml() follows aliases to their anchors and keeps the last of repeated keys", () => {
  const text = "base: &b { port: 80 }\nuse: *b\nx: 1\nx: 2\n";
  const { data, root, problems } = parseYaml(text);
  assert.deepEqual(data, { base: { port: 80 }, use: { port: 80 }, x: 2 });
  const record = data as { base: unknown; use: unknown };
  assert.equal(record.use, record.base, "an alias shares its anchor's value");
  assert.deepEqual(lineColumn(text, at(root(), "use", "port").start), [1, 18]);
  assert.deepEqual(lineColumn(text, at(root(), "x").start), [4, 4]);
  assert.deepEqual(problems, [
    { offset: text.indexOf("x: 2"), message: "duplicate key `x`", isShapeKnown: true },
  ]);
});

Deno.test("parseYaml() counts offsets from the byte order mark and through CRLF", () => {
  const text = "\ufeffa:\r\n  b: 1\r\n";
  const { root } = parseYaml(text);
  assert.equal(at(root(), "a", "b").start, text.indexOf("1"));
});

Deno.test("parseYaml() resolves scalars by the YAML 1.2 core schema", () => {
  const cases: [string, unknown][] = [
    ["0x1F", 31],
    ["0o17", 15],
    ["017", 17],
    ["+12", 12],
    ["1_000", "1_000"],
    ["0b101", "0b101"],
    ["-0x1", "-0x1"],
    ["1e3", 1000],
    [".5", 0.5],
    ["+.5", 0.5],
    ["-.Inf", -Infinity],
    [".NaN", NaN],
    ["~", null],
    ["Null", null],
    ["TRUE", true],
    ["False", false],
    ["yes", "yes"],
    ["on", "on"],
    ["2024-01-01", "2024-01-01"],
    ["12:30", "12:30"],
    ["'7'", "7"],
  ];
  for (const [text, expected] of cases) {
    const { data } = parseYaml(`k: ${text}\n`);
    assert.ok(Object.is((data as { k: unknown }).k, expected), `${text} → ${expected}`);
  }
});

Deno.test("parseYaml() resolves plain scalars as the yaml package does (property)", () => {
  // Keys too: a key is the string of what its scalar resolves to.
  const keyOf = (text: string) =>
    [...((parseYaml(`${text}: x\n`).root()?.entries?.keys()) ?? [])][0];
  assert.equal(keyOf("0x1F"), "31");
  assert.equal(keyOf("~"), "null");
  assert.equal(keyOf("'0x1F'"), "0x1F");
  assert.equal(keyOf("app.kubernetes.io/name"), "app.kubernetes.io/name");
  const scalar = fc.oneof(
    fc.stringMatching(/^[-+]?[0-9_.]{1,8}(?:[eE][-+]?[0-9]{1,3})?$/),
    fc.stringMatching(/^0[xob][0-9a-fA-F_]{1,6}$/),
    fc.constantFrom("~", "null", "NULL", "nUll", "true", "True", "tRue", ".inf", "-.INF", ".nan"),
    fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/),
  );
  fc.assert(
    fc.property(scalar, (value) => {
      const text = `k: ${value}\n`;
      let expected: unknown;
      try {
        expected = (oracleParse(text) as { k: unknown }).k;
      } catch {
        return; // not a plain scalar the oracle reads
      }
      const { data, problems } = parseYaml(text);
      assert.deepEqual(problems, []);
      const actual = (data as { k: unknown }).k;
      if (Math.abs(expected as number) === Infinity && !/inf/i.test(value)) {
        // A float that overflows stays a string here, where yaml makes it Infinity: a config
        // refuses both.
        assert.equal(actual, value);
        return;
      }
      assert.ok(Object.is(actual, expected), `${value}`);
    }),
    { numRuns: 2_000 },
  );
});

/**
 * A JSON-like value: maps with names for keys, lists, and scalars of every kind a config has.
 */
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.oneof(
      fc.integer({ min: -1_000_000, max: 1_000_000 }),
      fc.boolean(),
      fc.constant(null),
      fc.stringMatching(/^[a-z0-9:./ -]{0,12}$/),
      fc.string({ maxLength: 8 }),
    ),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9_-]{0,8}$/), tie("value"), {
      maxKeys: 4,
    }),
  ),
})).value;

/**
 * Walks the oracle's document beside ours, checking every key and value position.
 * @returns how many positions it compared
 */
function sameStarts(ours: SourceNode | undefined, theirs: unknown, path: string): number {
  let compared = 0;
  if (isMap(theirs)) {
    assert.ok(ours?.entries, `${path}: a map`);
    for (const pair of theirs.items) {
      const name = String((pair.key as { value: unknown }).value);
      const entry: SourceEntry | undefined = ours.entries.get(name);
      assert.ok(entry, `${path}.${name}: found`);
      const keyRange = (pair.key as YamlNode).range!;
      assert.equal(entry.keyStart, keyRange[0], `${path}.${name}: key at ${keyRange[0]}`);
      compared++;
      const v = pair.value as YamlNode | null;
      if (v !== null && !(isScalar(v) && v.value === null && v.source === "")) {
        compared += sameStarts(entry.value, v, `${path}.${name}`);
      }
    }
  } else if (isSeq(theirs)) {
    assert.ok(ours?.items, `${path}: a list`);
    assert.equal(ours.items.length, theirs.items.length, `${path}: items`);
    theirs.items.forEach((item, i) => {
      const v = item as YamlNode | null;
      if (v !== null && !(isScalar(v) && v.value === null && v.source === "")) {
        compared += sameStarts(ours.items![i], v, `${path}[${i}]`);
      }
    });
  } else if (isScalar(theirs)) {
    assert.equal(ours?.start, theirs.range![0], `${path}: value at ${theirs.range![0]}`);
    compared++;
  }
  return compared;
}

Deno.test("parseYaml() places every key and value where the yaml package does (property)", () => {
  let compared = 0;
  fc.assert(
    fc.property(
      fc.dictionary(fc.stringMatching(/^[a-z][a-zA-Z0-9]{0,8}$/), value, { maxKeys: 5 }),
      fc.record({
        indent: fc.integer({ min: 2, max: 4 }),
        /** Per collection in document order: written in flow style (`{}`/`[]`) or block. */
        flow: fc.array(fc.boolean(), { maxLength: 40 }),
        padding: fc.boolean(),
        indentSeq: fc.boolean(),
        comments: fc.boolean(),
      }),
      (document, style) => {
        const doc = new Document(document);
        let i = 0;
        visit(doc, {
          Map: (_, node) => void (node.flow = style.flow[i++] ?? false),
          Seq: (_, node) => void (node.flow = style.flow[i++] ?? false),
        });
        let text = doc.toString({
          indent: style.indent,
          flowCollectionPadding: style.padding,
          indentSeq: style.indentSeq,
        });
        if (style.comments) text = text.replace(/\n/g, " # note\n# line\n");
        const oracle = parseDocument(text, { uniqueKeys: false });
        if (oracle.errors.length > 0) return;
        const { data, root, problems } = parseYaml(text);
        assert.deepEqual(problems, [], text);
        assert.deepEqual(data, oracle.toJS(), text);
        compared += sameStarts(root(), oracle.contents, "");
      },
    ),
    { numRuns: 1_000 },
  );
  assert.ok(compared > 5_000, `compared ${compared} positions`);
});

Deno.test("parseYaml() stops alias bombs, cycles and deep nesting with a located problem", () => {
  const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
  for (const [name, prev] of [["b", "a"], ["c", "b"], ["d", "c"], ["e", "d"], ["f", "e"]]) {
    bomb.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(", ")}]`);
  }
  const text = bomb.join("\n") + "\n";
  const exploded = parseYaml(text);
  assert.equal(exploded.data, undefined);
  assert.equal(exploded.problems.length, 1);
  assert.match(
    exploded.problems[0]!.message,
    new RegExp(
      `aliases expand to more than ${DEFAULT_MAX_ALIAS_EXPANSION} values: reduce the use of`,
    ),
  );

  const cycle = parseYaml("x: &x [1, *x]\n");
  assert.deepEqual(cycle.problems.map((p) => [p.offset, p.isShapeKnown]), [[10, false]]);

  // The top-level list is level 1: the 101st list is the first one too deep.
  const tooDeep = "[".repeat(DEFAULT_MAX_NESTING_DEPTH + 1) +
    "]".repeat(DEFAULT_MAX_NESTING_DEPTH + 1);
  assert.deepEqual(parseYaml(tooDeep).problems, [{
    offset: DEFAULT_MAX_NESTING_DEPTH,
    message: `invalid YAML: nesting is deeper than ${DEFAULT_MAX_NESTING_DEPTH} levels`,
    isShapeKnown: false,
  }]);
  const justDeepEnough = "[".repeat(DEFAULT_MAX_NESTING_DEPTH) +
    "]".repeat(DEFAULT_MAX_NESTING_DEPTH);
  assert.deepEqual(parseYaml(justDeepEnough).problems, []);
  // Far deeper than the parser's stack could take: stopped early, inside the part too deep.
  const deep = "[".repeat(100_000) + "]".repeat(100_000);
  const [problem, ...more] = parseYaml(deep).problems;
  assert.deepEqual(more, []);
  assert.equal(
    problem?.message,
    `invalid YAML: nesting is deeper than ${DEFAULT_MAX_NESTING_DEPTH} levels`,
  );
  assert.ok(
    problem.offset >= DEFAULT_MAX_NESTING_DEPTH && problem.offset < 1_000,
    `${problem.offset}`,
  );
});
