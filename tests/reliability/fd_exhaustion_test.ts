/**
 * Running out of file descriptors must not take the admin server or health checks down:
 * a child process under `ulimit -n 64` exhausts its descriptors, then frees them, and the
 * admin server (probes and the status page) answers again by itself; a probe made while
 * exhausted is a local error, not a verdict on the backend. And `serve` under a low limit logs what to raise (it cannot
 * read the limit at start with its permissions) and serves again once descriptors are free.
 */
import assert from "node:assert/strict";
import { delay, freePort } from "../_helpers.ts";
import {
  BackendProcess,
  configYaml,
  echoTransfer,
  ServeProcess,
  type TransferResult,
  waitUntil,
} from "./_harness.ts";

const CHILD = new URL("./_fd_exhaustion_child.ts", import.meta.url).pathname;
const FD_LIMIT = 64;
/** Enough for serve to start with its listener and admin server, not for 128 clients. */
const SERVE_FD_LIMIT = 128;

interface Step {
  readonly step: string;
  readonly [key: string]: unknown;
}

/** One HTTP/1.1 GET over a raw connection: the status, or the error text. */
async function get(port: number, path: string, timeoutMs: number): Promise<number | string> {
  const signal = AbortSignal.timeout(timeoutMs);
  let conn: Deno.TcpConn | undefined;
  const onAbort = () => {
    try {
      conn?.close();
    } catch {
      // Closed already.
    }
  };
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port, signal });
    await conn.write(
      new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    );
    let text = "";
    const buffer = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
    return match === null
      ? `no status line: ${JSON.stringify(text.slice(0, 40))}`
      : Number(match[1]);
  } catch (error) {
    return signal.aborted ? "timed out" : String(error);
  } finally {
    signal.removeEventListener("abort", onAbort);
    onAbort();
  }
}

Deno.test("admin and probes survive descriptor exhaustion and recover by themselves", async () => {
  const child = new Deno.Command("bash", {
    args: ["-c", `ulimit -n ${FD_LIMIT} && exec "$0" run --allow-all "$1"`, Deno.execPath(), CHILD],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stderrText = new Response(child.stderr).text();
  let buffered = "";
  const deadlineTimers: ReturnType<typeof setTimeout>[] = [];
  const next = async (): Promise<Step> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await Promise.race([
        stdout.read(),
        new Promise<never>((_, reject) => {
          const timer = setTimeout(
            () => reject(new Error("Child gave no step within 20s")),
            20_000,
          );
          deadlineTimers.push(timer);
        }),
      ]);
      for (const timer of deadlineTimers.splice(0)) clearTimeout(timer);
      if (done) throw new Error(`Child ended early: ${await stderrText}`);
      buffered += value;
    }
    const end = buffered.indexOf("\n");
    const line = buffered.slice(0, end);
    buffered = buffered.slice(end + 1);
    return JSON.parse(line);
  };
  const send = (command: string) => writer.write(new TextEncoder().encode(command + "\n"));

  try {
    const started = await next();
    assert.equal(started.step, "started");
    const port = started.adminPort as number;
    assert.equal(await get(port, "/healthz", 5000), 200);

    await send("exhaust");
    const exhausted = await next();
    assert.equal(exhausted.step, "exhausted");
    assert.equal(exhausted.error, "EMFILE");
    const probe = exhausted.probe as { ok: boolean; isLocalError?: boolean; error?: string };
    assert.equal(probe.ok, false);
    assert.equal(probe.isLocalError, true, JSON.stringify(probe));
    assert.match(probe.error ?? "", /^local error: too many open files/);

    // While exhausted the kernel completes handshakes, but the server cannot accept: this
    // request waits in the backlog and is answered once descriptors are free again.
    const during = get(port, "/healthz", 10_000);
    const duringPage = get(port, "/", 10_000);
    await new Promise((resolve) => setTimeout(resolve, 500));

    await send("free");
    const freed = await next();
    assert.equal(freed.step, "freed");
    assert.equal((freed.probe as { ok: boolean }).ok, true, JSON.stringify(freed.probe));

    const recoverStart = performance.now();
    assert.equal(await during, 200);
    assert.equal(await duringPage, 200, "the status page answers once descriptors are free");
    let status: number | string = "";
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = await get(port, "/healthz", 1000);
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(status, 200);
    assert.equal(await get(port, "/", 1000), 200);
    const recoveredMs = Math.round(performance.now() - recoverStart);
    assert.ok(recoveredMs < 5000, `recovered after ${recoveredMs}ms`);

    await send("stop");
    const stopped = await next();
    assert.equal(stopped.step, "stopped");
    const connections = stopped.connections as { acceptErrors: number; openConnections: number };
    assert.ok(connections.acceptErrors > 0, JSON.stringify(connections));
    assert.equal(connections.openConnections, 0);
  } finally {
    await writer.close().catch(() => {});
    await stdout.cancel().catch(() => {});
    const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const status = await child.status;
    clearTimeout(killer);
    const stderr = await stderrText;
    assert.doesNotMatch(stderr, /Unhandled rejection|Uncaught|panicked/, stderr);
    assert.equal(status.code, 0, stderr);
  }
});

Deno.test("serve out of descriptors says what to raise, and serves again once they are free", async () => {
  await using backend = await BackendProcess.start("fd");
  const adminPort = freePort();
  const port = freePort();
  const serve = await ServeProcess.start(
    configYaml(adminPort, [{ name: "fd", port, backends: [backend.key] }]),
    adminPort,
    { openFilesLimit: SERVE_FD_LIMIT },
  );
  const clients: Deno.TcpConn[] = [];
  try {
    // Each forwarded client holds two of serve's descriptors: these are more than it has.
    for (let i = 0; i < SERVE_FD_LIMIT; i++) {
      clients.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    }
    await waitUntil(
      () => /Cannot accept on listener fd/.test(serve.output),
      "an accept error logged",
      10_000,
    );
    assert.match(
      serve.output,
      /Cannot accept on listener fd: .*the process is out of file descriptors; each proxied connection holds 2, so raise "ulimit -n" or LimitNOFILE/,
    );
    // The status page, asked while serve has no descriptor left, answers once there are.
    const page = get(adminPort, "/", 10_000);
    await delay(200);
    for (const client of clients.splice(0)) client.close();
    assert.equal(await page, 200, "the status page after descriptor exhaustion");
    // Served again once descriptors are free: a transfer through it arrives intact.
    let result: TransferResult | undefined;
    await waitUntil(
      async () => {
        try {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          result = await echoTransfer(conn, new Uint8Array(1024).fill(7));
          return true;
        } catch {
          return false;
        }
      },
      "a transfer through serve",
      10_000,
    );
    assert.equal(result?.backend, "fd");
    assert.equal(result?.receivedSha, result?.sentSha);
  } finally {
    for (const client of clients) client.close();
    await serve.stop();
  }
  assert.doesNotMatch(serve.output, /Unhandled rejection|Uncaught|panicked/, serve.output);
});
