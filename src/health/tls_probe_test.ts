import assert from "node:assert/strict";
import { probeTls } from "./tls_probe.ts";
import { probeTarget } from "./target.ts";

/** A self-signed certificate made by openssl for this run, removed afterwards. */
async function selfSigned(): Promise<{ cert: string; key: string }> {
  const dir = await Deno.makeTempDir();
  try {
    const { success, stderr } = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
        "-days",
        "1",
        "-subj",
        "/CN=backend.test",
        "-addext",
        "subjectAltName=DNS:backend.test",
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(success, new TextDecoder().decode(stderr));
    return {
      cert: await Deno.readTextFile(`${dir}/cert.pem`),
      key: await Deno.readTextFile(`${dir}/key.pem`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const PEM = await selfSigned();

/** How a TLS backend saw one connection end. */
type Ending = "close_notify" | `error: ${string}`;

/**
 * A TLS server on 127.0.0.1 that answers `PONG\r\n` to `PING` and records how each
 * connection ended: a clean read of `null` means the peer sent close_notify.
 */
function startTlsBackend() {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...PEM });
  const endings: Ending[] = [];
  const tasks = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const conn of listener) {
      const task = (async () => {
        const buffer = new Uint8Array(1024);
        try {
          await conn.handshake();
          while (true) {
            const n = await conn.read(buffer);
            if (n === null) {
              endings.push("close_notify");
              break;
            }
            if (new TextDecoder().decode(buffer.subarray(0, n)).includes("PING")) {
              await conn.write(new TextEncoder().encode("PONG\r\n"));
            }
          }
        } catch (error) {
          endings.push(`error: ${error instanceof Error ? error.message : String(error)}`);
        } finally {
          try {
            conn.close();
          } catch {
            // closed already
          }
        }
      })();
      tasks.add(task);
      task.finally(() => tasks.delete(task));
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    endings,
    async close() {
      listener.close();
      await loop;
      await Promise.all(tasks);
    },
  };
}

async function waitFor(predicate: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 5_000;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`Timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("probeTls() completes a handshake with a self-signed backend and closes with close_notify", async () => {
  const backend = startTlsBackend();
  try {
    const result = await probeTls({ host: "127.0.0.1", port: backend.port }, { timeoutMs: 2_000 });
    assert.ok(result.ok, result.error ?? "");
    assert.equal(result.error, undefined);
    await waitFor(() => backend.endings.length === 1, "the backend to see the close");
    assert.deepEqual(backend.endings, ["close_notify"]);
  } finally {
    await backend.close();
  }
});

Deno.test("probeTls() sends and expects inside TLS", async () => {
  const backend = startTlsBackend();
  try {
    const pass = await probeTls({ host: "127.0.0.1", port: backend.port }, {
      timeoutMs: 2_000,
      send: "PING\r\n",
      expect: "PONG",
      serverName: "backend.test",
    });
    assert.ok(pass.ok, pass.error ?? "");
    const fail = await probeTls({ host: "127.0.0.1", port: backend.port }, {
      timeoutMs: 300,
      send: "PING\r\n",
      expect: "+OK",
    });
    assert.deepEqual({ ok: fail.ok, error: fail.error }, {
      ok: false,
      error: "timed out after 300ms",
    });
    await waitFor(() => backend.endings.length === 2, "the backend to see both closes");
    assert.deepEqual(backend.endings, ["close_notify", "close_notify"]);
  } finally {
    await backend.close();
  }
});

Deno.test("probeTls() fails a plain TCP backend, a closed port and a silent one", async () => {
  // A plaintext server (Redis-style banner) answers the ClientHello with garbage.
  const plain = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of plain) {
      await conn.write(new TextEncoder().encode("-ERR unknown command\r\n")).catch(() => {});
      conn.close();
    }
  })().catch(() => {});
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const holding = (async () => {
    for await (const conn of silent) held.push(conn);
  })().catch(() => {});
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = closed.addr.port;
  closed.close();
  try {
    const garbage = await probeTls({ host: "127.0.0.1", port: plain.addr.port }, {
      timeoutMs: 2_000,
    });
    assert.equal(garbage.ok, false);
    assert.match(garbage.error!, /^(TLS handshake failed: |connection closed during)/);
    const refused = await probeTls({ host: "127.0.0.1", port: closedPort }, { timeoutMs: 2_000 });
    assert.deepEqual({ ok: refused.ok, error: refused.error }, {
      ok: false,
      error: "TLS handshake failed: connection refused",
    });
    const quiet = await probeTls({ host: "127.0.0.1", port: silent.addr.port }, {
      timeoutMs: 200,
    });
    assert.deepEqual({ ok: quiet.ok, error: quiet.error }, {
      ok: false,
      error: "timed out after 200ms",
    });
    const controller = new AbortController();
    controller.abort();
    const aborted = await probeTls({ host: "127.0.0.1", port: silent.addr.port }, {
      timeoutMs: 200,
      signal: controller.signal,
    });
    assert.equal(aborted.error, "aborted");
  } finally {
    plain.close();
    silent.close();
    for (const conn of held) conn.close();
    await Promise.all([serving, holding]);
  }
});

Deno.test("probeTarget() uses the TLS probe for checks with tls: true", async () => {
  const backend = startTlsBackend();
  try {
    const check = {
      enabled: true,
      intervalMs: 1_000,
      timeoutMs: 2_000,
      rise: 1,
      fall: 1,
      maxEjectionPercent: 50,
    };
    const target = { key: "k", pool: "p", host: "127.0.0.1", port: backend.port };
    assert.equal((await probeTarget({ ...target, check: { ...check, tls: true } })).ok, true);
    // The plain TCP check passes too, but leaves the backend with a broken handshake.
    assert.equal((await probeTarget({ ...target, check })).ok, true);
    await waitFor(() => backend.endings.length === 2, "both connections to end");
    assert.equal(backend.endings[0], "close_notify");
    assert.match(backend.endings[1]!, /^error: /);
  } finally {
    await backend.close();
  }
});
