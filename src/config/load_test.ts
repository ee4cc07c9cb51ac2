import assert from "node:assert/strict";
import { ConfigError, loadConfigFile } from "./mod.ts";

async function withTempFile(text: string, fn: (path: string) => Promise<void>): Promise<void> {
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(path, text);
    await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("loadConfigFile() returns the parsed config", async () => {
  await withTempFile(
    'configurations:\n  - { name: web, listenerAddress: ":8080", backendPortName: http }\n',
    async (path) => {
      const config = await loadConfigFile(path);
      assert.equal(config.configurations[0]?.port, 8080);
    },
  );
});

Deno.test("loadConfigFile() throws ConfigError with every issue, named after the file", async () => {
  await withTempFile(
    'configurations:\n  - { name: web, listenerAddress: ":0", backendPortName: HTTP }\n',
    async (path) => {
      try {
        await loadConfigFile(path);
        assert.fail("expected ConfigError");
      } catch (caught) {
        assert.ok(caught instanceof ConfigError);
        assert.equal(caught.issues.length, 2);
        assert.equal(caught.issues[0]!.file, path);
        assert.equal(caught.path, "configurations[0].listenerAddress");
        assert.equal(caught.line, 2);
        assert.equal(caught.column, 35);
      }
    },
  );
});

Deno.test("loadConfigFile() keeps the error class of an unreadable file and says which", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = `${dir}/missing.yaml`;
    const error = await loadConfigFile(missing).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof Deno.errors.NotFound);
    assert.ok(!(error instanceof ConfigError));
    assert.match(error.message, /^Cannot read config ".*missing\.yaml": /);
    assert.ok(error.cause instanceof Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
