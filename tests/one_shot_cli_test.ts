/**
 * One-shot commands (`discover`, `check`, `serve --dry-run`) through the real entry point
 * against an API server that refuses connections or whose name does not resolve: exit 2
 * within about 2 s with one line on stderr. `serve` keeps retrying instead.
 */
import assert from "node:assert/strict";
import { freePort } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url);
/** "About 2 s", with room for starting Deno on a busy machine. */
const ONE_SHOT_MS = 6_000;

/** A config with one Kubernetes listener and a kubeconfig whose server is `server`. */
async function withCluster(server: string, fn: (config: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    const kubeconfig = `${dir}/kubeconfig`;
    await Deno.writeTextFile(
      kubeconfig,
      `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "${server}" } }]
contexts: [{ name: c, context: { cluster: c, user: u } }]
current-context: c
users: [{ name: u, user: { token: not-a-secret } }]
`,
    );
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(
      config,
      `settings: { kubeconfigPath: ${JSON.stringify(kubeconfig)}, adminAddress: "" }
configurations:
  - name: db
    listenerAddress: "127.0.0.1:${freePort()}"
    backendPortName: mongodb
    namespace: development
`,
    );
    await fn(config);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function run(config: string, args: readonly string[]) {
  const started = performance.now();
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-net", "src/main.ts", "-c", config, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const decoder = new TextDecoder();
  return {
    code,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr),
    elapsedMs: performance.now() - started,
  };
}

const COMMANDS: readonly (readonly string[])[] = [["discover"], ["check"], [
  "serve",
  "--dry-run",
]];

for (const args of COMMANDS) {
  Deno.test(`${args.join(" ")} fails at once with one line when the API server refuses`, async () => {
    const port = freePort();
    const server = `https://127.0.0.1:${port}`;
    await withCluster(server, async (config) => {
      const result = await run(config, args);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stdout, "");
      const kubeconfig = config.replace(/config\.yaml$/, "kubeconfig");
      assert.equal(
        result.stderr,
        "nautiluslb: Cannot reach the Kubernetes API server: connection refused " +
          `(kubeconfig ${kubeconfig} (explicit path), context c, server ${server})\n`,
      );
      assert.ok(result.elapsedMs < ONE_SHOT_MS, `took ${result.elapsedMs.toFixed(0)} ms`);
    });
  });
}

Deno.test("discover fails at once with one line when the API server's name does not resolve", async () => {
  // .invalid never resolves (RFC 2606).
  await withCluster("https://nautiluslb-test.invalid:6443", async (config) => {
    const result = await run(config, ["discover"]);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stdout, "");
    assert.match(
      result.stderr,
      /^nautiluslb: Cannot reach the Kubernetes API server: the name "nautiluslb-test\.invalid" does not resolve \(kubeconfig .*, server https:\/\/nautiluslb-test\.invalid:6443\)\n$/,
    );
    assert.ok(result.elapsedMs < ONE_SHOT_MS, `took ${result.elapsedMs.toFixed(0)} ms`);
  });
});

Deno.test("serve keeps retrying an API server that refuses, until stopped", async () => {
  await withCluster(`https://127.0.0.1:${freePort()}`, async (config) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-net", "src/main.ts", "-c", config, "serve"],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = child.output();
    // Well past the one-shot deadline: still running.
    const exited = await Promise.race([
      child.status.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 4_000)),
    ]);
    if (!exited) child.kill("SIGTERM");
    const { code, stderr } = await output;
    const text = new TextDecoder().decode(stderr);
    assert.equal(exited, false, `serve exited early:\n${text}`);
    assert.equal(code, 0, text);
    assert.match(text, /Cannot watch .*retrying with backoff/);
    assert.doesNotMatch(text, /Cannot reach the Kubernetes API server/);
  });
});
