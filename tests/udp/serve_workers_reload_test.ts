/**
 * `serve` with UDP listeners: with `workers: 2` every session stays in one worker (Deno binds
 * datagram sockets with SO_REUSEADDR only, so one worker takes every datagram), and a reload
 * that changes another listener keeps the UDP sessions (the backend sees the same source
 * port before and after).
 */
import assert from "node:assert/strict";
import { delay, HOST, waitFor } from "../_helpers.ts";
import { UdpClient, UdpEcho } from "../_udp_helpers.ts";
import { startServe } from "./_serve.ts";

function freePort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

function freeUdpPort(): number {
  const socket = Deno.listenDatagram({ hostname: HOST, port: 0, transport: "udp" });
  const port = (socket.addr as Deno.NetAddr).port;
  socket.close();
  return port;
}

/** `configurations:` with a udp listener in front of `echo`, and a tcp listener `other`. */
function configText(udpPort: number, admin: number, echo: UdpEcho, workers: number, extra = "") {
  return `settings:
  adminAddress: "${HOST}:${admin}"
  workers: ${workers}
configurations:
  - name: echo
    listenerAddress: "${HOST}:${udpPort}"
    protocol: udp
    backends: ["${HOST}:${echo.port}"]
    healthCheck:
      enabled: false
  - name: other
    listenerAddress: "${HOST}:${freePort()}"
    backends: ["${HOST}:9"]
    healthCheck:
      enabled: false
${extra}`;
}

/** Sends `rounds` datagrams from each client, each answered; fails on a lost reply. */
async function exchange(clients: UdpClient[], port: number, tag: string, rounds: number) {
  for (let round = 0; round < rounds; round++) {
    for (const [i, client] of clients.entries()) {
      const text = `c${i}-${tag}${round}`;
      let reply = await client.ask(text, port, 1_000);
      for (let retry = 0; reply === undefined && retry < 10; retry++) {
        await delay(200);
        reply = await client.ask(text, port, 1_000);
      }
      assert.equal(reply, `echo:${text}`);
    }
  }
}

/** Backend-side source ports each client's datagrams came from, by client index. */
function portsByClient(echo: UdpEcho, count: number): Set<string>[] {
  const out = Array.from({ length: count }, () => new Set<string>());
  echo.texts.forEach((text, j) => {
    const i = Number(/^c(\d+)-/.exec(text)?.[1]);
    out[i]?.add(echo.peers[j]!);
  });
  return out;
}

Deno.test("serve udp workers: with workers 2 each session stays on one worker", async () => {
  const echo = new UdpEcho("echo");
  const port = freeUdpPort();
  const admin = freePort();
  const dir = await Deno.makeTempDir({ prefix: "nlb-udp-" });
  await Deno.writeTextFile(`${dir}/config.yaml`, configText(port, admin, echo, 2));
  const proc = startServe(`${dir}/config.yaml`, `${HOST}:${admin}`);
  const clients = Array.from({ length: 8 }, () => new UdpClient());
  try {
    await waitFor(() => proc.stderr().includes("Listening on"), "serve started", 15_000);
    await exchange(clients, port, "r", 3);
    for (const [i, ports] of portsByClient(echo, clients.length).entries()) {
      assert.equal(ports.size, 1, `client ${i} reached the backend from ${[...ports]}`);
    }
    // Workers post their counts about once a second: poll until both have posted.
    const activeOf = async () => {
      const text = await (await fetch(`http://${HOST}:${admin}/metrics`)).text();
      const pattern = /nautiluslb_worker_connections_active\{worker="(\d+)"\} (\d+)/g;
      return { text, active: [...text.matchAll(pattern)].map((m) => Number(m[2])) };
    };
    let seen = await activeOf();
    for (let i = 0; i < 50; i++) {
      const total = seen.active.reduce((a, b) => a + b, 0);
      if (seen.active.length === 2 && total === clients.length) break;
      await delay(200);
      seen = await activeOf();
    }
    assert.deepEqual(seen.active.toSorted((a, b) => a - b), [0, clients.length], seen.text);
    assert.match(
      seen.text,
      new RegExp(`nautiluslb_udp_sessions_active\\{listener="echo"\\} ${clients.length}\\n`),
    );
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await proc.stop();
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve udp reload: changing another listener keeps the UDP sessions", async () => {
  const echo = new UdpEcho("echo");
  const port = freeUdpPort();
  const admin = freePort();
  const dir = await Deno.makeTempDir({ prefix: "nlb-udp-" });
  const config = `${dir}/config.yaml`;
  const first = configText(port, admin, echo, 1);
  await Deno.writeTextFile(config, first);
  const proc = startServe(config, `${HOST}:${admin}`);
  const clients = Array.from({ length: 4 }, () => new UdpClient());
  try {
    await waitFor(() => proc.stderr().includes("Listening on"), "serve started", 15_000);
    await exchange(clients, port, "a", 2);
    const before = portsByClient(echo, clients.length);
    // The tcp listener `other` changes; the udp listener `echo` stays as it was.
    await Deno.writeTextFile(
      config,
      first.replace('backends: ["127.0.0.1:9"]', 'backends: ["127.0.0.1:7"]'),
    );
    proc.child.kill("SIGHUP");
    await waitFor(() => /[Rr]eload/.test(proc.stderr()), "reload logged", 10_000);
    await exchange(clients, port, "b", 2);
    const after = portsByClient(echo, clients.length);
    for (const [i, ports] of after.entries()) {
      assert.deepEqual([...ports], [...before[i]!], `client ${i} got a new session`);
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await proc.stop();
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});
