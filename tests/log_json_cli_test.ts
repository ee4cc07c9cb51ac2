/**
 * `serve --log-format json` through the real entry point: every stderr line is one JSON
 * object whose message reads as text (strings unquoted) and whose properties are kept, a
 * refused reload's record included.
 */
import assert from "node:assert/strict";
import { delay, freePort, startNamed } from "./_helpers.ts";
import { spawnServe, waitReady } from "./_serve_process.ts";

interface JsonRecord {
  readonly level: string;
  readonly message: string;
  readonly logger: string;
  readonly properties: Record<string, unknown>;
}

function records(stderr: string): JsonRecord[] {
  return stderr.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
}

Deno.test("serve --log-format json: messages unquoted, properties kept, a refused reload too", async () => {
  await using backend = startNamed("a");
  const port = freePort();
  const admin = freePort();
  const dir = await Deno.makeTempDir();
  const path = `${dir}/config.yaml`;
  const text = `settings: { adminAddress: "127.0.0.1:${admin}" }
configurations:
  - name: web
    listenerAddress: "127.0.0.1:${port}"
    maxConnections: 100
    healthCheck: { enabled: false }
    backends: ["127.0.0.1:${backend.port}"]
`;
  await Deno.writeTextFile(path, text);
  const serve = spawnServe(path, admin, { args: ["--log-format", "json"] });
  try {
    await waitReady(serve);
    const listening = records(serve.stderr()).find((r) => r.message.startsWith("Listening on"));
    assert.ok(listening !== undefined, serve.stderr());
    assert.equal(listening.message, `Listening on 127.0.0.1:${port} for pool web: 1/1 backends up`);
    assert.deepEqual(listening.properties, {
      address: `127.0.0.1:${port}`,
      pool: "web",
      healthy: 1,
      backends: 1,
    });

    await Deno.writeTextFile(path, text.replace(`127.0.0.1:${port}`, "127.0.0.1:70000"));
    serve.child.kill("SIGHUP");
    const until = performance.now() + 10_000;
    let refusal: JsonRecord | undefined;
    while (performance.now() < until && refusal === undefined) {
      await delay(50);
      refusal = records(serve.stderr()).find((r) => r.level === "ERROR");
    }
    assert.ok(refusal !== undefined, serve.stderr());
    assert.equal(refusal.logger, "nautiluslb.config");
    const problem =
      `${path}:4:22: configurations[0].listenerAddress: port 70000 is out of range 1-65535`;
    assert.equal(
      refusal.message,
      `Cannot reload ${path}: 1 problem(s), keeping the running config\n${problem}`,
    );
    assert.deepEqual(refusal.properties, {
      path,
      count: 1,
      problems: problem,
      issues: [problem],
    });
  } finally {
    await serve.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
