/**
 * The `nautiluslb` command as the docs install it (`deno task install`), run the way the
 * original ran: no arguments, in a directory holding `config.yaml`.
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { freePort, HOST, startNamed } from "../_helpers.ts";
import { exchange, pollFor, REPO_ROOT, sh } from "./_deploy.ts";

Deno.test("deno task install puts a nautiluslb command on PATH that serves ./config.yaml without arguments", async () => {
  const root = await Deno.makeTempDir({ prefix: "nautiluslb-install-" });
  const backend = startNamed("alpha");
  let child: Deno.ChildProcess | undefined;
  try {
    const path = `${root}/bin:${dirname(Deno.execPath())}:${Deno.env.get("PATH") ?? ""}`;
    await sh(Deno.execPath(), ["task", "install"], {
      cwd: REPO_ROOT,
      env: { DENO_INSTALL_ROOT: root, PATH: path, NO_COLOR: "1" },
    });
    const work = `${root}/work`;
    await Deno.mkdir(work);
    const port = freePort();
    await Deno.writeTextFile(
      `${work}/config.yaml`,
      `settings:\n  adminAddress: ""\nconfigurations:\n  - name: web\n` +
        `    listenerAddress: "${HOST}:${port}"\n    requestTimeout: 5\n` +
        `    backends: ["${HOST}:${backend.port}"]\n`,
    );
    assert.equal((await sh("nautiluslb", ["--version"], { env: { PATH: path } })).trim(), "0.1.0");

    child = new Deno.Command("nautiluslb", {
      args: [],
      cwd: work,
      env: { PATH: path, NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const answer = await pollFor("traffic through the listener", 30_000, async () => {
      const text = await exchange(port);
      return text === "" ? undefined : text;
    });
    assert.equal(answer, "alpha");
    child.kill("SIGTERM");
    const out = await child.output();
    child = undefined;
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const said = stderr.split("\n").filter((l) => l.includes("Serving config ./config.yaml"));
    assert.equal(said.length, 1, stderr);
  } finally {
    if (child !== undefined) {
      child.kill("SIGKILL");
      await child.output();
    }
    await backend.close();
    await Deno.remove(root, { recursive: true });
  }
});
