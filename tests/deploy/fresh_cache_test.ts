/**
 * A newcomer's machine: an empty Deno cache. The CLI tests that compare stderr exactly must
 * pass while Deno downloads the npm packages the entry point loads (first run, lazy loads).
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "./_deploy.ts";

/** Each runs first in its own empty cache, so it is the one that triggers the downloads. */
const FIRST_RUNS = ["/dev/urandom", "FIFO"];

for (const first of FIRST_RUNS) {
  Deno.test(`cli_validate_test "${first}" passes as the first run in an empty Deno cache`, async () => {
    const denoDir = await Deno.makeTempDir({ prefix: "nautiluslb-deno-dir-" });
    try {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "test",
          "--allow-read",
          "--allow-write",
          "--allow-run",
          "--allow-env",
          "--filter",
          `/${first.replaceAll("/", "\\/")}/`,
          "tests/cli_validate_test.ts",
        ],
        cwd: REPO_ROOT,
        env: { DENO_DIR: denoDir, NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, text);
      assert.match(text, /ok \| 1 passed \| 0 failed/, text);
    } finally {
      await Deno.remove(denoDir, { recursive: true });
    }
  });
}
