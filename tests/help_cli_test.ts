/**
 * `--help` of every subcommand through the real entry point: it lists the command's own flags
 * and the global ones its examples use (`-c`, `--log-level`, `--log-format`), exits 0 and
 * writes to stdout only.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

async function help(...args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-net", "src/main.ts", ...args, "--help"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

const GLOBAL_FLAGS = ["-c, --config <file>", "--log-level <level>", "--log-format <format>"];

/** Each subcommand and the flags of its own it must list. */
const OWN_FLAGS: Readonly<Record<string, readonly string[]>> = {
  serve: [
    "--dry-run",
    "--handover",
    "--from-manifests <path>",
    "--kubeconfig <file>",
    "--context <name>",
    "--watch-config",
    "--admin-address <host:port>",
  ],
  discover: [
    "-n, --namespace <namespace>",
    "-o, --output <format>",
    "--explain",
    "--check",
    "-w, --watch",
    "--from-manifests <path>",
    "--kubeconfig <file>",
    "--context <name>",
  ],
  check: [
    "-n, --namespace <namespace>",
    "-o, --output <format>",
    "--from-manifests <path>",
    "--kubeconfig <file>",
    "--context <name>",
    "--concurrency <n>",
  ],
  validate: ["-o, --output <format>", "--max-problems <n>"],
};

for (const [command, flags] of Object.entries(OWN_FLAGS)) {
  Deno.test(`${command} --help lists its own flags and the global ones`, async () => {
    const run = await help(command);
    assert.equal(run.code, 0);
    assert.equal(run.stderr, "");
    assert.match(run.stdout, new RegExp(`^Usage: nautiluslb ${command} `));
    const [own, global] = run.stdout.split("\nGlobal Options:\n");
    assert.ok(global !== undefined, `no "Global Options" section:\n${run.stdout}`);
    for (const flag of flags) {
      assert.ok(own!.includes(`  ${flag}`), `${command} --help lacks ${flag}:\n${run.stdout}`);
    }
    for (const flag of GLOBAL_FLAGS) {
      assert.ok(global.includes(`  ${flag}`), `${command} --help lacks ${flag}:\n${run.stdout}`);
    }
  });
}
