/**
 * `deno task demo`: starts three local backends that answer with their own name, then
 * serves examples/demo.yaml in this process until Ctrl-C.
 *
 * Try it: `nc 127.0.0.1 8080` (round robin), `8081` (least connections), `8082` (Maglev).
 *
 * @module
 */
import { run } from "../src/cli/mod.ts";

const BACKENDS = [
  { name: "backend-1", port: 9001 },
  { name: "backend-2", port: 9002 },
  { name: "backend-3", port: 9003 },
];
const encoder = new TextEncoder();
const out = (text: string) => Deno.stdout.writeSync(encoder.encode(text));

/** A backend that greets with its name, then echoes until the client closes. */
async function backend(name: string, listener: Deno.TcpListener): Promise<void> {
  for await (const conn of listener) {
    (async () => {
      try {
        await conn.write(encoder.encode(`hello from ${name}\n`));
        const buf = new Uint8Array(16 * 1024);
        for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
          await conn.write(buf.subarray(0, n));
        }
      } catch {
        // client went away
      } finally {
        try {
          conn.close();
        } catch {
          // closed
        }
      }
    })();
  }
}

async function greet(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.closeWrite();
    const buf = new Uint8Array(256);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0)).trim();
  } finally {
    conn.close();
  }
}

const listeners = BACKENDS.map((b) => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: b.port });
  backend(b.name, listener);
  return listener;
});

const config = new URL("../examples/demo.yaml", import.meta.url).pathname;
const serving = run(["serve", "--config", config]);

// Show the round robin once the listener is up, then leave it running.
for (let attempt = 0; attempt < 50; attempt++) {
  try {
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await greet(8080));
    out(
      `\nNautilusLB demo is running (config: examples/demo.yaml).\n` +
        `Four connections to 127.0.0.1:8080 (round robin) were answered by:\n` +
        answers.map((a) => `  ${a}\n`).join("") +
        `\nTry it yourself:\n` +
        `  nc 127.0.0.1 8080   # round robin\n` +
        `  nc 127.0.0.1 8081   # least connections\n` +
        `  nc 127.0.0.1 8082   # Maglev on your client IP: always the same backend\n` +
        `Press Ctrl-C to stop (open connections drain first).\n\n`,
    );
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 100));
  }
}

const code = await serving;
for (const l of listeners) l.close();
Deno.exit(code);
