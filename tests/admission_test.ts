/**
 * Admission over real sockets: the source ACL from client addresses inside a network
 * namespace (IPv4 and IPv6, allowed and denied), the per-source limit at the limit and one
 * over, and which address counts behind a PROXY header.
 *
 * The namespace tests need root and `ip` (iproute2) and `socat`; without them they skip with
 * one notice line, unless `NAUTILUS_NETNS_REQUIRED=1` (CI), which makes that a failure.
 */
import assert from "node:assert/strict";
import { createBalancer } from "../src/balancer/mod.ts";
import { CidrList } from "../src/core/cidr.ts";
import { Pool } from "../src/pool/mod.ts";
import { Admission, ProxyListener } from "../src/proxy/mod.ts";
import {
  closeQuietly,
  connect,
  isClosedWithin,
  readExactly,
  startEcho,
  startNamed,
  startProxy,
  type TestServer,
  waitFor,
  writeAll,
} from "./_helpers.ts";
import { ignoreWithoutNetns, run } from "./reliability/_netns.ts";

const encoder = new TextEncoder();

async function echoes(conn: Deno.TcpConn, text: string): Promise<boolean> {
  await writeAll(conn, encoder.encode(text));
  const reply = await readExactly(conn, text.length).catch(() => new Uint8Array());
  return new TextDecoder().decode(reply) === text;
}

Deno.test("source ACL on loopback: a denied peer is closed before a byte, counted as acl", async () => {
  await using echo = startEcho();
  await using denied = startProxy({
    backends: [echo.backend],
    admission: new Admission({
      allow: CidrList.from(["127.0.0.0/8"]),
      deny: CidrList.from(["127.0.0.1/32"]),
    }),
  });
  const conn = await connect(denied.port);
  assert.ok(await isClosedWithin(conn, 2_000), "deny wins over allow");
  closeQuietly(conn);
  await waitFor(() => denied.listener.stats.refusedByCause.acl === 1, "acl refusal counted");
  assert.equal(denied.listener.stats.refused, 1);

  await using allowed = startProxy({
    backends: [echo.backend],
    admission: new Admission({ allow: CidrList.from(["127.0.0.0/8", "::1/128"]) }),
  });
  const ok = await connect(allowed.port);
  assert.ok(await echoes(ok, "hello"));
  closeQuietly(ok);
  assert.equal(allowed.listener.stats.refusedByCause.acl, 0);
});

Deno.test("maxConnectionsPerSource: at the limit all forward, one over is refused, a close frees one", async () => {
  await using backend = startNamed("b");
  await using proxy = startProxy({
    backends: [backend.backend],
    admission: new Admission({ maxConnectionsPerSource: 3 }),
  });
  const open: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const conn = await connect(proxy.port);
      open.push(conn);
      assert.equal(new TextDecoder().decode(await readExactly(conn, 1)), "b");
    }
    const over = await connect(proxy.port);
    assert.ok(await isClosedWithin(over, 2_000), "the 4th connection is refused");
    closeQuietly(over);
    await waitFor(
      () => proxy.listener.stats.refusedByCause.source_limit === 1,
      "source_limit counted",
    );
    open.shift()!.close();
    await waitFor(() => proxy.listener.stats.activeConnections === 2, "one connection closed");
    const again = await connect(proxy.port);
    open.push(again);
    assert.equal(new TextDecoder().decode(await readExactly(again, 1)), "b");
    assert.equal(proxy.listener.stats.refusedByCause.source_limit, 1);
  } finally {
    for (const conn of open) closeQuietly(conn);
  }
});

Deno.test("maxConnectionsPerSource behind a PROXY header counts the header's client, not the peer", async () => {
  await using backend = startNamed("b");
  await using proxy = startProxy({
    backends: [backend.backend],
    acceptProxyProtocol: { trustedProxies: CidrList.from(["127.0.0.0/8"]) },
    admission: new Admission({ maxConnectionsPerSource: 1 }),
  });
  const viaOuterLb = async (client: string) => {
    const conn = await connect(proxy.port);
    await writeAll(conn, encoder.encode(`PROXY TCP4 ${client} 192.0.2.1 40000 443\r\n`));
    return conn;
  };
  const open: Deno.TcpConn[] = [];
  try {
    // One peer (the outer load balancer), two clients: each gets its own connection.
    for (const client of ["203.0.113.5", "203.0.113.6"]) {
      const conn = await viaOuterLb(client);
      open.push(conn);
      assert.equal(new TextDecoder().decode(await readExactly(conn, 1)), "b");
    }
    const over = await viaOuterLb("203.0.113.5");
    assert.ok(await isClosedWithin(over, 2_000), "a second connection of one client is refused");
    closeQuietly(over);
    await waitFor(
      () => proxy.listener.stats.refusedByCause.source_limit === 1,
      "source_limit counted",
    );
  } finally {
    for (const conn of open) closeQuietly(conn);
  }
});

// ---------------------------------------------------------------------------------------
// Clients inside a network namespace (prefix adm, 10.233.0.0/16 and fd00:233::/64).

let sequence = 0;

/** A namespace joined to the host by a veth pair with an IPv4 /30 and an IPv6 /126. */
class ClientNs implements AsyncDisposable {
  readonly name: string;
  readonly hostV4: string;
  readonly clientV4: string;
  readonly hostV6: string;
  readonly clientV6: string;
  readonly #hostLink: string;

  private constructor(tag: string, n: number) {
    this.name = `adm${tag}`;
    this.#hostLink = `admh${tag}`;
    this.hostV4 = `10.233.${(n >> 6) & 255}.${(n & 63) * 4 + 1}`;
    this.clientV4 = `10.233.${(n >> 6) & 255}.${(n & 63) * 4 + 2}`;
    this.hostV6 = `fd00:233::${(n * 4 + 1).toString(16)}`;
    this.clientV6 = `fd00:233::${(n * 4 + 2).toString(16)}`;
  }

  static async create(): Promise<ClientNs> {
    sequence++;
    const n = ((Deno.pid * 7 + sequence) % 16_000) + 1;
    const ns = new ClientNs(`${Deno.pid % 100_000}${sequence}`, n);
    const peer = `admn${ns.name.slice(3)}`;
    try {
      await run(["ip", "netns", "add", ns.name]);
      await run(["ip", "link", "add", ns.#hostLink, "type", "veth", "peer", "name", peer]);
      await run(["ip", "link", "set", peer, "netns", ns.name]);
      await run(["ip", "addr", "add", `${ns.hostV4}/30`, "dev", ns.#hostLink]);
      await run(["ip", "-6", "addr", "add", `${ns.hostV6}/126`, "dev", ns.#hostLink, "nodad"]);
      await run(["ip", "link", "set", ns.#hostLink, "up"]);
      const inside = ["ip", "netns", "exec", ns.name];
      await run([...inside, "ip", "link", "set", "lo", "up"]);
      await run([...inside, "ip", "addr", "add", `${ns.clientV4}/30`, "dev", peer]);
      await run([...inside, "ip", "-6", "addr", "add", `${ns.clientV6}/126`, "dev", peer, "nodad"]);
      await run([...inside, "ip", "link", "set", peer, "up"]);
    } catch (error) {
      await ns[Symbol.asyncDispose]();
      throw error;
    }
    return ns;
  }

  /** Sends `text` from inside the namespace with socat; what came back (`""` when refused). */
  async send(host: string, port: number, text: string): Promise<string> {
    const target = host.includes(":") ? `TCP6:[${host}]:${port}` : `TCP4:${host}:${port}`;
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", this.name, "socat", "-t", "1", "-T", "3", "-", target],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(encoder.encode(text)).catch(() => {});
    await writer.close().catch(() => {});
    const { stdout } = await child.output();
    return new TextDecoder().decode(stdout);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await run(["ip", "link", "del", this.#hostLink]).catch(() => {});
    await run(["ip", "netns", "del", this.name]).catch(() => {});
  }
}

/** A listener on `hostname` (the host side of the veth) in front of an echo backend. */
function listenOn(hostname: string, admission: Admission, backend: TestServer) {
  const pool = new Pool({ name: "acl", balancer: createBalancer("round_robin") });
  pool.update([backend.backend]);
  const listener = new ProxyListener({ name: "acl", hostname, port: 0, picker: pool, admission });
  const { port } = listener.listen();
  const serving = listener.serve();
  return {
    listener,
    port,
    async [Symbol.asyncDispose]() {
      await listener.shutdown(0);
      await serving;
      pool.close();
    },
  };
}

Deno.test({
  name: "source ACL from a client namespace: IPv4 and IPv6 peers allowed and denied",
  ignore: ignoreWithoutNetns("admission namespace test"),
  async fn() {
    await using ns = await ClientNs.create();
    await using echo = startEcho();
    const cases: [host: string, allow: string[], deny: string[], isAllowed: boolean][] = [
      [ns.hostV4, [`${ns.clientV4}/32`], [], true],
      [ns.hostV4, ["10.233.0.0/16"], [`${ns.clientV4}/32`], false],
      [ns.hostV4, ["192.0.2.0/24"], [], false],
      [ns.hostV6, ["fd00:233::/64"], [], true],
      [ns.hostV6, ["fd00:233::/64"], [`${ns.clientV6}/128`], false],
      [ns.hostV6, ["10.233.0.0/16"], [], false], // an IPv4 allowlist admits no IPv6 peer
    ];
    for (const [host, allow, deny, isAllowed] of cases) {
      const admission = new Admission({ allow: CidrList.from(allow), deny: CidrList.from(deny) });
      await using proxy = listenOn(host, admission, echo);
      const reply = await ns.send(host, proxy.port, "ping\n");
      const what = `${host} allow ${allow} deny ${deny}`;
      assert.equal(reply, isAllowed ? "ping\n" : "", what);
      assert.equal(proxy.listener.stats.refusedByCause.acl, isAllowed ? 0 : 1, what);
    }
  },
});
