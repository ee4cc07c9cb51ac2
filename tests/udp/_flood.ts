/**
 * Sends one DNS query from each of `portsPerSource` new sockets on each source address, to
 * `host:port`, without waiting for answers: many sessions from many addresses at once, paced
 * a little per address (see below). Run
 * inside the client namespace (`ip netns exec`). Usage:
 * `deno run --unstable-net --allow-net _flood.ts HOST PORT PORTS_PER_SOURCE SOURCE...`; prints the number
 * of datagrams sent.
 *
 * @module
 */
import { encodeDnsQuery } from "../../src/health/mod.ts";

const [host, port, perSource, ...sources] = Deno.args;
let sent = 0;
for (const source of sources) {
  const sockets = Array.from(
    { length: Number(perSource) },
    () => Deno.listenDatagram({ hostname: source, port: 0, transport: "udp" }),
  );
  await Promise.all(sockets.map(async (socket, i) => {
    await socket.send(encodeDnsQuery(i, "who.test"), {
      transport: "udp",
      hostname: host!,
      port: Number(port),
    });
    sent++;
  }));
  for (const socket of sockets) socket.close();
  // 10 datagrams per 2ms: a flood for the proxy, but paced so the listener socket's receive
  // buffer (the kernel's default) does not overflow and every datagram is counted somewhere.
  await new Promise((resolve) => setTimeout(resolve, 2));
}
console.log(sent);
