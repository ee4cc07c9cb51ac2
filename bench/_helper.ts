/**
 * Small load tools the benchmark runs as separate processes (pinned with the load
 * generators, away from the proxy):
 *
 * - `idle-server PORT`: accepts connections on 127.0.0.1 and holds them until the peer closes.
 * - `hold PORT N`: opens N connections to 127.0.0.1:PORT, prints one JSON line
 *   `{"opened","failed"}`, holds them until stdin closes.
 * - `churn PORT N CONCURRENCY`: N short HTTP/1.1 requests with `Connection: close`, each on
 *   its own connection, read to EOF; prints `{"ok","failed","ms"}`.
 *
 * @module
 */

const REQUEST = new TextEncoder().encode(
  "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n",
);

async function idleServer(port: number): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  for await (const conn of listener) holdUntilClosed(conn);
}

/** Waits for the peer to close (so no socket lingers in CLOSE_WAIT), then closes. */
async function holdUntilClosed(conn: Deno.TcpConn): Promise<void> {
  const byte = new Uint8Array(1);
  try {
    while ((await conn.read(byte)) !== null) { /* discard */ }
  } catch { /* reset */ }
  try {
    conn.close();
  } catch { /* closed */ }
}

async function hold(port: number, count: number): Promise<void> {
  const conns: Deno.TcpConn[] = [];
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      try {
        conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(256, count) }, worker));
  console.log(JSON.stringify({ opened: conns.length, failed }));
  // Hold until the parent closes stdin.
  for await (const _ of Deno.stdin.readable) { /* wait */ }
  for (const conn of conns) conn.close();
}

async function churn(port: number, count: number, concurrency: number): Promise<void> {
  const buffer = new Uint8Array(16 * 1024);
  let ok = 0;
  let failed = 0;
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    const local = new Uint8Array(buffer.length);
    while (next < count) {
      next++;
      let conn: Deno.TcpConn | undefined;
      try {
        conn = await Deno.connect({ hostname: "127.0.0.1", port });
        await conn.write(REQUEST);
        let bytes = 0;
        while (true) {
          const n = await conn.read(local);
          if (n === null) break;
          bytes += n;
        }
        if (bytes > 0) ok++;
        else failed++;
      } catch {
        failed++;
      } finally {
        try {
          conn?.close();
        } catch { /* closed */ }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  console.log(JSON.stringify({ ok, failed, ms: Math.round(performance.now() - start) }));
}

if (import.meta.main) {
  const [mode, ...rest] = Deno.args;
  const nums = rest.map(Number);
  switch (mode) {
    case "idle-server":
      await idleServer(nums[0]!);
      break;
    case "hold":
      await hold(nums[0]!, nums[1]!);
      break;
    case "churn":
      await churn(nums[0]!, nums[1]!, nums[2] ?? 32);
      break;
    default:
      console.error(
        "usage: _helper.ts idle-server PORT | hold PORT N | churn PORT N [CONCURRENCY]",
      );
      Deno.exit(2);
  }
}
