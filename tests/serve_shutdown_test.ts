/**
 * `settings.shutdownDelay` through the real CLI: on SIGTERM `/readyz` fails at once while
 * the listener still accepts; the drain starts after the delay and the process exits 0.
 */
import assert from "node:assert/strict";
import { closeQuietly, delay, freePort, readName, startNamed } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url);

Deno.test("SIGTERM fails readiness first and keeps accepting for shutdownDelay", async () => {
  await using backend = startNamed("a");
  const port = freePort();
  const admin = freePort();
  const dir = await Deno.makeTempDir();
  const config = `${dir}/config.yaml`;
  await Deno.writeTextFile(
    config,
    `settings: { adminAddress: "127.0.0.1:${admin}", shutdownDelay: 1500ms, logLevel: warning }
configurations:
  - name: web
    listenerAddress: "127.0.0.1:${port}"
    drainTimeout: 1s
    backends: ["127.0.0.1:${backend.port}"]
`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", "src/main.ts", "serve", "-c", config],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const ready = async () => {
    try {
      const res = await fetch(`http://127.0.0.1:${admin}/readyz`);
      await res.body?.cancel();
      return res.status;
    } catch {
      return 0;
    }
  };
  const answer = async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      return await readName(conn, 1);
    } finally {
      closeQuietly(conn);
    }
  };
  try {
    let status = 0;
    const deadline = performance.now() + 20_000;
    while ((status = await ready()) !== 200 && performance.now() < deadline) await delay(50);
    assert.equal(status, 200, "ready before the signal");
    child.kill("SIGTERM");
    let notReady = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 1000 && (notReady = await ready()) !== 503) await delay(20);
    assert.equal(notReady, 503, "readiness fails at once");
    assert.equal(await answer(), "a", "still accepting during shutdownDelay");
    const code = (await child.status).code;
    const elapsed = performance.now() - t0;
    assert.equal(code, 0, await stderr);
    assert.ok(elapsed >= 1000, `exited after ${elapsed.toFixed(0)}ms, before the delay`);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
    await child.status;
    await stderr;
    await Deno.remove(dir, { recursive: true });
  }
});
