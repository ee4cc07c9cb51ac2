import assert from "node:assert/strict";
import { closeQuietly, writeAll } from "./io.ts";

Deno.test("writeAll() writes everything a short-writing writer takes in pieces", async () => {
  const received: number[] = [];
  const writer = {
    write: (p: Uint8Array) => {
      const n = Math.min(3, p.length);
      received.push(...p.subarray(0, n));
      return Promise.resolve(n);
    },
  };
  const bytes = Uint8Array.from({ length: 10 }, (_, i) => i);
  await writeAll(writer, bytes);
  assert.deepEqual(received, [...bytes]);
});

Deno.test("writeAll() moves a megabyte through a real loopback socket", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  listener.close();
  const bytes = new Uint8Array(1024 * 1024).map((_, i) => i % 251);
  const reading = (async () => {
    const got = new Uint8Array(bytes.length);
    let offset = 0;
    while (offset < got.length) {
      const n = await server.read(got.subarray(offset));
      if (n === null) break;
      offset += n;
    }
    return got.subarray(0, offset);
  })();
  await writeAll(client, bytes);
  client.close();
  assert.deepEqual(await reading, bytes);
  server.close();
});

Deno.test("closeQuietly() closes once and ignores a second close", () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  closeQuietly(listener);
  closeQuietly(listener);
  assert.throws(() => listener.close(), Deno.errors.BadResource);
});
