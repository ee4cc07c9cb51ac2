import assert from "node:assert/strict";
import { NO_SLOT, SlotLayout } from "./slot_layout.ts";

Deno.test("SlotLayout keeps the slots of keys that stay and bumps the version on change", () => {
  const layout = new SlotLayout(8, () => true);
  const first = layout.set("web", ["a", "b"]);
  assert.deepEqual([...first], [["a", 0], ["b", 1]]);
  assert.equal(layout.version, 1);
  const same = layout.set("web", ["b", "a"]);
  assert.equal(layout.version, 1, "same keys: no new version");
  assert.deepEqual([...same].sort(), [["a", 0], ["b", 1]]);
  const next = layout.set("web", ["b", "c"]);
  assert.equal(next.get("b"), 1);
  assert.equal(next.get("c"), 2, "a's slot is not reused in the batch that gave it up");
  assert.equal(layout.version, 2);
});

Deno.test("SlotLayout reuses a slot only once it is idle, in a later batch", () => {
  const busy = new Set<number>();
  const layout = new SlotLayout(2, (slot) => !busy.has(slot));
  layout.set("web", ["a", "b"]);
  busy.add(0);
  layout.set("web", ["b"]);
  layout.recycle();
  assert.equal(layout.set("db", ["x"]).get("x"), NO_SLOT, "a still drains in slot 0");
  busy.delete(0);
  layout.recycle();
  assert.equal(layout.set("db", ["x"]).get("x"), 0);
  layout.delete("web");
  layout.recycle();
  assert.equal(layout.used, 1);
  assert.deepEqual([...layout.get("web")], []);
});
