/**
 * When network-namespace scenarios run, skip with a notice, or fail: the decision for each
 * combination of availability and environment.
 */
import assert from "node:assert/strict";
import { netnsDecision } from "./_netns.ts";

const ROOT_NEEDED = "network namespaces need root (run the tests as root)";

Deno.test("netns scenarios run where namespaces are available", () => {
  assert.deepEqual(netnsDecision("network fault tests", undefined, {}), { skip: false });
  assert.deepEqual(netnsDecision("network fault tests", undefined, { required: "1" }), {
    skip: false,
  });
});

Deno.test("netns scenarios skip with one notice line without root unless required", () => {
  for (const env of [{}, { netns: "skip" }, { required: "0" }]) {
    const decision = netnsDecision("network fault tests", ROOT_NEEDED, env);
    assert.equal(decision.skip, true);
    assert.equal(
      decision.notice,
      `network fault tests skipped: ${ROOT_NEEDED} (NAUTILUS_NETNS_REQUIRED=1 fails instead)`,
    );
    assert.ok(!decision.notice!.includes("\n"));
  }
});

Deno.test("NAUTILUS_NETNS_REQUIRED=1 turns a missing prerequisite into a failure", () => {
  assert.throws(
    () => netnsDecision("handover test", ROOT_NEEDED, { required: "1" }),
    {
      message:
        `Cannot run the handover test: ${ROOT_NEEDED} (NAUTILUS_NETNS_REQUIRED=1 requires them)`,
    },
  );
});

Deno.test("NAUTILUS_NETNS=skip skips even where namespaces are available", () => {
  assert.deepEqual(netnsDecision("network fault tests", undefined, { netns: "skip" }), {
    skip: true,
    notice:
      "network fault tests skipped: NAUTILUS_NETNS=skip (NAUTILUS_NETNS_REQUIRED=1 fails instead)",
  });
});
