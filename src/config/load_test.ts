import assert from "node:assert/strict";
import { ConfigError, loadConfigFile, MAX_CONFIG_BYTES, readConfigText } from "./mod.ts";

/** Runs `fn` with a temporary `.yaml` file holding `text` as UTF-8; removes it after. */
function withTempFile(text: string, fn: (path: string) => Promise<void>): Promise<void> {
  return withTempBytes(new TextEncoder().encode(text), fn);
}

Deno.test("loadConfigFile() returns the parsed config and the sha256 of the bytes parsed", async () => {
  const text =
    'configurations:\n  - { name: web, listenerAddress: ":8080", backendPortName: http, namespace: web }\n';
  await withTempFile(text, async (path) => {
    const { config, sha256, warnings } = await loadConfigFile(path);
    assert.equal(config.configurations[0]?.port, 8080);
    assert.deepEqual(warnings, []);
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    assert.equal(sha256, hex);
  });
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

/** Runs `fn` with a temporary `.yaml` file holding `bytes`; removes it after. */
async function withTempBytes(
  bytes: Uint8Array,
  fn: (path: string) => Promise<void>,
): Promise<void> {
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeFile(path, bytes);
    await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => assert.fail("expected a rejection"), (e: unknown) => e);
}

const VALID =
  'configurations:\n  - { name: web, listenerAddress: ":8080", backendPortName: http }\n';

Deno.test("readConfigText() rejects a file larger than maxBytes, naming it", async () => {
  await withTempFile(VALID, async (path) => {
    const error = await rejection(readConfigText(path, { maxBytes: 16 }));
    assert.ok(error instanceof RangeError);
    assert.equal(
      error.message,
      `Cannot read config ${
        JSON.stringify(path)
      }: the file is larger than 16 bytes: a config is a few kilobytes`,
    );
    assert.equal(await readConfigText(path, { maxBytes: VALID.length }), VALID);
  });
});

Deno.test("readConfigText() stops an endless device at MAX_CONFIG_BYTES", async () => {
  const error = await rejection(readConfigText("/dev/zero"));
  assert.ok(error instanceof RangeError);
  assert.match(error.message, /^Cannot read config "\/dev\/zero": the file is larger than 4 MiB/);
  assert.equal(MAX_CONFIG_BYTES, 4 * 1024 * 1024);
});

Deno.test("readConfigText() rejects with the reason of an aborted signal", async () => {
  const controller = new AbortController();
  const reason = new Deno.errors.Interrupted("SIGTERM received");
  controller.abort(reason);
  await withTempFile(VALID, async (path) => {
    assert.equal(await rejection(readConfigText(path, { signal: controller.signal })), reason);
  });
});

Deno.test("readConfigText() drops a UTF-8 byte order mark", async () => {
  const bom = new Uint8Array([0xef, 0xbb, 0xbf]);
  await withTempBytes(
    new Uint8Array([...bom, ...new TextEncoder().encode(VALID)]),
    async (path) => {
      assert.equal(await readConfigText(path), VALID);
    },
  );
});

/** Text that is not UTF-8, and the one issue it gets. */
const NOT_UTF8: readonly {
  name: string;
  bytes: Uint8Array;
  issue: readonly [number, number, string];
}[] = [
  {
    name: "UTF-16 with a byte order mark",
    bytes: new Uint8Array([
      0xff,
      0xfe,
      ...[..."configurations: []\n"].flatMap((c) => [c.charCodeAt(0), 0]),
    ]),
    issue: [
      1,
      1,
      "the file is not UTF-8: it starts with a UTF-16 byte order mark: save it as UTF-8",
    ],
  },
  {
    name: "UTF-16 without a byte order mark (NUL bytes)",
    bytes: new Uint8Array([..."configurations: []\n"].flatMap((c) => [c.charCodeAt(0), 0])),
    issue: [
      1,
      2,
      "the file is not UTF-8 text: it contains a NUL byte (UTF-16 without a byte order mark?)",
    ],
  },
  {
    name: "Latin-1 on the second line",
    bytes: new Uint8Array([...new TextEncoder().encode("# ok\n# caf"), 0xe9, 0x0a]),
    issue: [2, 6, "the file is not UTF-8: byte 0xe9 is invalid"],
  },
  {
    name: "an encoded surrogate",
    bytes: new Uint8Array([0x61, 0xed, 0xa0, 0x80]),
    issue: [1, 2, "the file is not UTF-8: byte 0xed is invalid"],
  },
];

for (const { name, bytes, issue } of NOT_UTF8) {
  Deno.test(`readConfigText() reports a file that is not UTF-8: ${name}`, async () => {
    await withTempBytes(bytes, async (path) => {
      const error = await rejection(readConfigText(path));
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(
        error.issues.map((i) => [i.file, i.line, i.column, i.path, i.message]),
        [[path, ...issue.slice(0, 2), "", issue[2]]],
      );
    });
  });
}

Deno.test("readConfigText() accepts every well-formed UTF-8 sequence length", async () => {
  const text = "# a é € 𝄞 \u{10ffff}\n" + VALID;
  await withTempFile(text, async (path) => {
    assert.equal(await readConfigText(path), text);
  });
});
