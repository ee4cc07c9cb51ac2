import assert from "node:assert/strict";
import { formatHostPattern, parseHostPattern, RouteTable } from "./route_table.ts";

const table = new RouteTable([
  { name: "api", hosts: ["api.example.com"] },
  { name: "one", hosts: ["*.example.com"] },
  { name: "deep", hosts: ["**.example.com"] },
  { name: "svc", hosts: ["*.svc.example.com"] },
  { name: "any-svc", hosts: ["**.svc.example.com"] },
  { name: "shout", hosts: ["MIXED.Example.ORG."] },
  { name: "apex", hosts: ["example.net", "**.example.net"] },
]);

Deno.test("RouteTable.match: table of names and routes", () => {
  const cases: [string, string | undefined][] = [
    ["api.example.com", "api"], // exact beats *.example.com
    ["API.EXAMPLE.COM.", "api"], // lower-cased, trailing dot dropped
    ["web.example.com", "one"], // *. matches one label
    ["a.b.example.com", "deep"], // *. does not match two labels; ** does
    ["example.com", undefined], // neither wildcard matches the apex
    ["x.svc.example.com", "svc"], // longer suffix beats shorter
    ["svc.example.com", "one"], // one label under example.com
    ["a.x.svc.example.com", "any-svc"], // two labels under svc.example.com
    ["mixed.example.org", "shout"],
    ["example.net", "apex"],
    ["deep.down.example.net", "apex"],
    ["other.test", undefined],
    ["", undefined],
    [".example.com", undefined], // empty first label matches no wildcard
    ["com", undefined],
  ];
  for (const [name, expected] of cases) {
    assert.equal(table.match(name)?.name, expected, name);
  }
});

Deno.test("RouteTable: at equal suffix one label beats any depth, whatever the order", () => {
  const t = new RouteTable([
    { name: "deep", hosts: ["**.example.com"] },
    { name: "one", hosts: ["*.example.com"] },
  ]);
  assert.equal(t.match("a.example.com")?.name, "one");
  assert.equal(t.match("a.b.example.com")?.name, "deep");
});

Deno.test("parseHostPattern: kinds and errors", () => {
  assert.deepEqual(parseHostPattern("*.Example.com."), { kind: "one_label", name: "example.com" });
  assert.deepEqual(parseHostPattern("**.a.b"), { kind: "any_depth", name: "a.b" });
  assert.deepEqual(parseHostPattern("x_y.local"), { kind: "exact", name: "x_y.local" });
  assert.equal(formatHostPattern(parseHostPattern("**.A.b")), "**.a.b");
  const bad: [string, RegExp][] = [
    ["", /it is empty/],
    ["*.", /a wildcard needs a suffix/],
    ["*", /'\*' is allowed only as the whole first label/],
    ["a.*.com", /'\*' is allowed only/],
    ["foo*.com", /'\*' is allowed only/],
    ["a..com", /empty label/],
    ["-a.com", /label "-a" is not letters/],
    ["a b.com", /label "a b"/],
    [`${"a".repeat(64)}.com`, /at most 63/],
  ];
  for (const [text, message] of bad) {
    assert.throws(() => parseHostPattern(text), (e: unknown) => {
      assert.ok(e instanceof SyntaxError);
      assert.match(e.message, /^Cannot parse host pattern /);
      assert.match(e.message, message);
      return true;
    }, text);
  }
});
