/**
 * A handover of a UDP listener: a second `serve` binds the same address (SO_REUSEADDR, the
 * sharing Deno offers for datagram sockets), the kernel gives it every new datagram at once,
 * the first process drains and exits. A client asking all along loses no answer: datagrams
 * already queued on the old socket are answered by the old process, its sessions end once
 * answered. The new process binds nothing else on that address first (a bind probe with
 * SO_REUSEADDR took the datagrams that came while it was bound, in about 4 of 10 runs).
 */
import assert from "node:assert/strict";
import { delay, HOST } from "../_helpers.ts";
import { UdpClient, UdpEcho } from "../_udp_helpers.ts";
import { startServe } from "./_serve.ts";

function freeTcpPort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

Deno.test("serve udp handover: a second process takes over, no answer is lost", async () => {
  const echo = new UdpEcho("echo");
  const socket = Deno.listenDatagram({ hostname: HOST, port: 0, transport: "udp" });
  const port = (socket.addr as Deno.NetAddr).port;
  socket.close();
  const dir = await Deno.makeTempDir({ prefix: "nlb-udp-" });
  const admins = [`${HOST}:${freeTcpPort()}`, `${HOST}:${freeTcpPort()}`];
  for (const [i, admin] of admins.entries()) {
    await Deno.writeTextFile(
      `${dir}/config${i}.yaml`,
      `settings:
  adminAddress: "${admin}"
configurations:
  - name: echo
    listenerAddress: "${HOST}:${port}"
    protocol: udp
    backends: ["${HOST}:${echo.port}"]
    healthCheck:
      enabled: false
`,
    );
  }
  const clients = Array.from({ length: 4 }, () => new UdpClient());
  const old = startServe(`${dir}/config0.yaml`, admins[0]!);
  let next: ReturnType<typeof startServe> | undefined;
  try {
    const sessions = (proc: typeof old) =>
      proc.metric('nautiluslb_udp_sessions_total{listener="echo"}');
    for (let i = 0; i < 50 && !(await sessions(old) >= 0); i++) await delay(100);
    let asked = 0;
    let answered = 0;
    let isAsking = true;
    // Each client asks again as soon as it has its answer (thousands of datagrams a second):
    // a socket bound beside the old one but never read, for a moment, shows as a lost answer.
    const asking = Promise.all(clients.map(async (client, i) => {
      while (isAsking) {
        const text = `c${i}-${asked++}`;
        if (await client.ask(text, port, 1_000) === `echo:${text}`) answered++;
      }
    }));
    await delay(300);
    // Without --handover, serve refuses a port another process serves.
    next = startServe(`${dir}/config1.yaml`, admins[1]!, ["--handover"]);
    for (let i = 0; i < 100 && !(await sessions(next) > 0); i++) await delay(50);
    const takenOver = await sessions(next);
    old.child.kill("SIGTERM");
    const exit = await old.child.status;
    await delay(300);
    isAsking = false;
    await asking;
    console.log(
      `handover: ${asked} asked, ${answered} answered; old exited ${exit.code}; new took ` +
        `${takenOver}+ sessions`,
    );
    assert.ok(takenOver > 0, "the new process opened no session");
    assert.equal(exit.code, 0);
    assert.equal(answered, asked);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await old.stop();
    await next?.stop();
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});
