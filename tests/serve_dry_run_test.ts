/**
 * `serve --dry-run` through the real CLI: resolve, one health round, bind checks, exit code.
 */
import assert from "node:assert/strict";
import { freePort, startNamed } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url);

async function dryRun(config: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/config.yaml`;
    await Deno.writeTextFile(path, config);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "-A", "src/main.ts", "serve", "--dry-run", "-c", path],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function config(listenPort: number, backends: readonly number[], admin = ""): string {
  return `settings: { adminAddress: "${admin}", logLevel: warning }
configurations:
  - name: web
    listenerAddress: "127.0.0.1:${listenPort}"
    backends: [${backends.map((p) => `"127.0.0.1:${p}"`).join(", ")}]
`;
}

Deno.test("serve --dry-run exits 0 when every listener can bind and every pool is up", async () => {
  await using backend = startNamed("a");
  const port = freePort();
  const result = await dryRun(config(port, [backend.port]));
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    result.stdout,
    new RegExp(`web +127\\.0\\.0\\.1:${port} +127\\.0\\.0\\.1:${backend.port} .* healthy`),
  );
  assert.match(
    result.stdout,
    /Dry run ok: 1 listener\(s\) can bind, every pool has a healthy backend/,
  );
  // Nothing was left bound for traffic.
  Deno.listen({ hostname: "127.0.0.1", port }).close();
});

Deno.test("serve --dry-run exits 1 naming a listener address that is taken", async () => {
  await using backend = startNamed("a");
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const result = await dryRun(config(taken.addr.port, [backend.port]));
    assert.equal(result.code, 1);
    assert.match(
      result.stdout,
      new RegExp(
        `web: cannot bind 127\\.0\\.0\\.1:${taken.addr.port}: .*[Aa]ddress already in use`,
      ),
    );
  } finally {
    taken.close();
  }
});

Deno.test("serve --dry-run exits 1 when a pool has no healthy backend or the admin port is taken", async () => {
  const dead = freePort();
  const admin = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const result = await dryRun(config(freePort(), [dead], `127.0.0.1:${admin.addr.port}`));
    assert.equal(result.code, 1);
    assert.match(result.stdout, /Dry run found 2 problem\(s\)/);
    assert.match(result.stdout, /web: no healthy backend \(0\/1\)/);
    assert.match(
      result.stdout,
      new RegExp(`admin: cannot bind 127\\.0\\.0\\.1:${admin.addr.port}`),
    );
  } finally {
    admin.close();
  }
});
