import assert from "node:assert/strict";
import { privilegedPortHint } from "./privileged_port.ts";

Deno.test("privilegedPortHint says what to change for a refused port below 1024 only", () => {
  const denied = new Deno.errors.PermissionDenied("Permission denied (os error 13)");
  assert.match(
    privilegedPortHint(denied, 80),
    /^: port 80 is privileged .*ip_unprivileged_port_start=0/,
  );
  assert.equal(privilegedPortHint(denied, 8080), "");
  assert.equal(privilegedPortHint(new Deno.errors.AddrInUse("in use"), 80), "");
  assert.match(privilegedPortHint(new Error("Permission denied (os error 13)"), 443), /port 443/);
});
