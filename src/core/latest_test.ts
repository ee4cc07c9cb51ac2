import assert from "node:assert/strict";
import { Latest } from "./latest.ts";

Deno.test("Latest.values() yields only the newest value and skips overwritten ones", async () => {
  const cell = new Latest<number>();
  const controller = new AbortController();
  const seen: number[] = [];
  let next!: () => void;
  let stepped = new Promise<void>((resolve) => next = resolve);
  const reader = (async () => {
    for await (const value of cell.values(controller.signal)) {
      seen.push(value);
      next();
    }
  })();
  cell.set(1);
  await stepped;
  stepped = new Promise<void>((resolve) => next = resolve);
  // Three values before the reader runs again: it sees only the last.
  cell.set(2);
  cell.set(3);
  cell.set(4);
  await stepped;
  controller.abort();
  await reader;
  assert.deepEqual(seen, [1, 4]);
  assert.equal(cell.version, 4);
  assert.equal(cell.value, 4);
});

Deno.test("Latest.values() starts after `since`: values set before the call count when asked", async () => {
  const cell = new Latest<string>();
  cell.set("old");
  const mark = cell.version;
  cell.set("between");
  const controller = new AbortController();
  const fromMark: string[] = [];
  for await (const value of cell.values(controller.signal, mark)) {
    fromMark.push(value);
    controller.abort();
  }
  assert.deepEqual(fromMark, ["between"]);

  // The default cursor is "now": nothing is pending, so only the abort ends it.
  const later = new AbortController();
  const fromNow: string[] = [];
  const reader = (async () => {
    for await (const value of cell.values(later.signal)) fromNow.push(value);
  })();
  await new Promise((resolve) => setTimeout(resolve, 10));
  later.abort();
  await reader;
  assert.deepEqual(fromNow, []);
});

Deno.test("Latest.values() ends at once for an aborted signal and leaves no waiter behind", async () => {
  const cell = new Latest<number>();
  cell.set(1);
  const seen: number[] = [];
  for await (const value of cell.values(AbortSignal.abort(), 0)) seen.push(value);
  assert.deepEqual(seen, []);

  // Two readers, each with its own cursor, both see the same newest value.
  const controller = new AbortController();
  const a: number[] = [];
  const b: number[] = [];
  const readers = [a, b].map((out) =>
    (async () => {
      for await (const value of cell.values(controller.signal)) {
        out.push(value);
        if (value === 2) return;
      }
    })()
  );
  await new Promise((resolve) => setTimeout(resolve, 0));
  cell.set(2);
  await Promise.all(readers);
  controller.abort();
  assert.deepEqual([a, b], [[2], [2]]);
});
