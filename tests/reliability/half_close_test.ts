/**
 * Backend-first half-close through the real `serve` CLI, repeated so that a race cannot
 * hide: the backend writes N bytes and shuts down its write side; the client must receive
 * exactly those N bytes, then EOF, every time.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  closeQuietly,
  connect,
  randomBytes,
  readAll,
  readExactly,
  sha256Hex,
  TestServer,
  withTimeout,
  writeAll,
} from "../_helpers.ts";
import { report, serveOneListener } from "./_harness.ts";

const ITERATIONS = 200;
const CONCURRENCY = 10;
const SIZES = [1, 1_000, 65_535, 65_536, 65_537, 300_000, 1_048_576];
const SOURCE = randomBytes(Math.max(...SIZES));

/** Reads a 4-byte big-endian length, writes that many bytes, then shuts down its write side. */
function startHalfCloser(): TestServer {
  return new TestServer(async (conn) => {
    const header = await readExactly(conn, 4);
    const length = new DataView(header.buffer).getUint32(0);
    await writeAll(conn, SOURCE.subarray(0, length));
    await conn.closeWrite();
    // Keep the socket until the client has seen EOF and closed its side.
    await conn.read(new Uint8Array(1)).catch(() => null);
  });
}

Deno.test("backend-first half-close delivers every byte then EOF, 200 times", async () => {
  await using backend = startHalfCloser();
  await using rig = await serveOneListener({
    name: "half",
    backends: [`127.0.0.1:${backend.port}`],
  });
  const { port } = rig;
  const expected = new Map<number, string>();
  for (const size of SIZES) expected.set(size, await sha256Hex(SOURCE.subarray(0, size)));

  const started = performance.now();
  let done = 0;
  for (let round = 0; round < ITERATIONS / CONCURRENCY; round++) {
    await Promise.all(Array.from({ length: CONCURRENCY }, async (_, i) => {
      const size = SIZES[(round * CONCURRENCY + i) % SIZES.length]!;
      const conn = await connect(port);
      try {
        const header = new Uint8Array(4);
        new DataView(header.buffer).setUint32(0, size);
        await writeAll(conn, header);
        const received = await withTimeout(readAll(conn), 10_000, `${size} bytes then EOF`);
        assert.equal(received.length, size, `iteration ${round}.${i}: bytes before EOF`);
        assert.equal(await sha256Hex(received), expected.get(size));
        done++;
      } finally {
        closeQuietly(conn);
      }
    }));
  }
  assert.equal(done, ITERATIONS);
  report("backend-first half-close", {
    iterations: ITERATIONS,
    concurrency: CONCURRENCY,
    elapsedMs: Math.round(performance.now() - started),
  });
});
