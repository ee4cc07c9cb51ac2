import assert from "node:assert/strict";
import { bindFailure } from "./bind_failure.ts";

const WEB = { name: "web", host: "127.0.0.1", port: 8080, protocol: "tcp" } as const;
const IN_USE = "Address already in use (os error 98)";

Deno.test("bindFailure names the listener and its address, and keeps the cause", () => {
  const cause = new Deno.errors.AddrInUse(IN_USE);
  const error = bindFailure(cause, WEB, false);
  assert.equal(error.message, `Cannot start listeners: web: cannot bind 127.0.0.1:8080: ${IN_USE}`);
  assert.equal(error.cause, cause);
});

Deno.test("bindFailure says a held address is not shared when this process shares it", () => {
  const hint = (protocol: "tcp" | "udp", cause: unknown) =>
    bindFailure(cause, { ...WEB, protocol }, true).message.split(`${IN_USE}`)[1];
  const tcp = ": the process that serves it does not share it (SO_REUSEPORT), so it cannot " +
    "be handed over";
  assert.equal(hint("tcp", new Deno.errors.AddrInUse(IN_USE)), tcp);
  // A worker's failure arrives as Deno's message only.
  assert.equal(hint("tcp", new Error(IN_USE)), tcp);
  assert.equal(hint("udp", new Error(IN_USE)), tcp.replace("SO_REUSEPORT", "SO_REUSEADDR"));
});

Deno.test("bindFailure: a privileged port's hint; other errors as they are", () => {
  const denied = bindFailure(
    new Deno.errors.PermissionDenied("Permission denied (os error 13)"),
    { ...WEB, port: 80 },
    true,
  );
  assert.match(denied.message, /^Cannot start listeners: web: cannot bind 127\.0\.0\.1:80: /);
  assert.match(denied.message, /port 80 is privileged and this process lacks CAP_NET_BIND_SERVICE/);
  const other = bindFailure(new Error("Cannot assign requested address (os error 99)"), WEB, true);
  assert.equal(
    other.message,
    "Cannot start listeners: web: cannot bind 127.0.0.1:8080: Cannot assign requested address " +
      "(os error 99)",
  );
});
