/**
 * The bare baseline: a TCP proxy with no features, in the same plain read/write loop style
 * as NautilusLB's data path, one reused 64 KiB buffer per direction, round robin. The
 * benchmark runs it beside NautilusLB to show what our features cost.
 *
 * Usage: `deno run --allow-net bench/bare_proxy.ts LISTEN=BACKEND[,BACKEND...] ...`,
 * e.g. `127.0.0.1:8000=127.0.0.1:9001,127.0.0.1:9002`.
 *
 * @module
 */

const BUFFER_BYTES = 64 * 1024;

/** Host and port. */
interface HostPort {
  readonly hostname: string;
  readonly port: number;
}

function parseHostPort(text: string): HostPort {
  const colon = text.lastIndexOf(":");
  const port = Number(text.slice(colon + 1));
  if (colon < 1 || !Number.isInteger(port)) {
    throw new TypeError(`Cannot parse address: expected HOST:PORT, got '${text}'`);
  }
  return { hostname: text.slice(0, colon), port };
}

async function copy(src: Deno.TcpConn, dst: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(BUFFER_BYTES);
  try {
    while (true) {
      const n = await src.read(buffer);
      if (n === null) break;
      let written = 0;
      while (written < n) written += await dst.write(buffer.subarray(written, n));
    }
    await dst.closeWrite();
  } catch {
    try {
      src.close();
    } catch { /* closed */ }
    try {
      dst.close();
    } catch { /* closed */ }
  }
}

async function handle(client: Deno.TcpConn, backend: HostPort): Promise<void> {
  let upstream: Deno.TcpConn;
  try {
    upstream = await Deno.connect(backend);
  } catch {
    client.close();
    return;
  }
  try {
    client.setNoDelay(true);
    upstream.setNoDelay(true);
  } catch { /* gone already: the copies end at once */ }
  await Promise.all([copy(client, upstream), copy(upstream, client)]);
  try {
    client.close();
  } catch { /* closed */ }
  try {
    upstream.close();
  } catch { /* closed */ }
}

async function serve(listen: HostPort, backends: readonly HostPort[]): Promise<void> {
  const listener = Deno.listen({ ...listen, transport: "tcp" });
  let next = 0;
  for await (const client of listener) {
    const backend = backends[next++ % backends.length]!;
    handle(client, backend);
  }
}

if (import.meta.main) {
  if (Deno.args.length === 0) {
    console.error("usage: bare_proxy.ts LISTEN=BACKEND[,BACKEND...] ...");
    Deno.exit(2);
  }
  await Promise.all(Deno.args.map((arg) => {
    const [listen, list] = arg.split("=");
    return serve(parseHostPort(listen!), (list ?? "").split(",").map(parseHostPort));
  }));
}
