/**
 * `serve` with a tcp and a udp listener on one address in front of two dnsmasq servers, asked
 * with `kdig` over UDP and TCP: answers, metrics, the access log, idle expiry, and a killed
 * backend's new sessions moving within the passive bound. Skips with a notice without
 * dnsmasq and kdig, unless `NAUTILUS_UDP_REQUIRED=1`.
 */
import assert from "node:assert/strict";
import { delay, waitFor } from "../_helpers.ts";
import { haveTools, kdig, startDnsmasq } from "./_dns_peers.ts";
import { startServe } from "./_serve.ts";

const ok = haveTools("UDP serve tests", ["dnsmasq", "kdig"]);

/** A port free for both TCP and UDP on 127.0.0.1 a moment ago. */
function freeTcpUdpPort(): number {
  for (let i = 0; i < 20; i++) {
    const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = tcp.addr.port;
    try {
      Deno.listenDatagram({ hostname: "127.0.0.1", port, transport: "udp" }).close();
      return port;
    } catch {
      // taken for UDP: try another
    } finally {
      tcp.close();
    }
  }
  throw new Error("Cannot find a port free for TCP and UDP");
}

Deno.test({
  name: "serve udp: tcp and udp on one address, metrics, access log, passive failover",
  ignore: !ok,
  fn: async () => {
    const servers = [await startDnsmasq("s1"), await startDnsmasq("s2")];
    const port = freeTcpUdpPort();
    const admin = freeTcpUdpPort();
    const dir = await Deno.makeTempDir({ prefix: "nlb-udp-" });
    const config = `${dir}/config.yaml`;
    const backends = JSON.stringify(servers.map((s) => `127.0.0.1:${s.port}`));
    await Deno.writeTextFile(
      config,
      `settings:
  adminAddress: "127.0.0.1:${admin}"
  accessLog: true
configurations:
  - name: dns-tcp
    listenerAddress: "127.0.0.1:${port}"
    backends: ${backends}
  - name: dns
    listenerAddress: "127.0.0.1:${port}"
    protocol: udp
    backends: ${backends}
    healthCheck:
      interval: 60s
      fall: 3
      dnsQuery: health.test
    udp:
      sessionIdleTimeout: 1s
      replyTimeout: 300ms
`,
    );
    const proc = startServe(config, `127.0.0.1:${admin}`);
    try {
      await waitFor(() => proc.stderr().includes("dns"), "serve started", 10_000);
      let udp = await kdig("127.0.0.1", port, ["who.test", "TXT"], { timeoutS: 1 });
      for (let i = 0; i < 20 && udp.text === ""; i++) {
        await delay(200);
        udp = await kdig("127.0.0.1", port, ["who.test", "TXT"], { timeoutS: 1 });
      }
      assert.ok(["s1", "s2"].includes(udp.text), `udp answer ${JSON.stringify(udp.text)}`);
      const tcp = await kdig("127.0.0.1", port, ["who.test", "TXT"], { tcp: true });
      assert.ok(["s1", "s2"].includes(tcp.text), `tcp answer ${JSON.stringify(tcp.text)}`);

      const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
      assert.match(metrics, /nautiluslb_udp_sessions_total\{listener="dns"\} [1-9]/);
      assert.match(
        metrics,
        /nautiluslb_udp_datagrams_total\{listener="dns",direction="to_client"\} [1-9]/,
      );
      assert.match(metrics, /nautiluslb_udp_drops_total\{listener="dns",cause="limit"\} 0/);
      // One access log line per session once it has been idle for sessionIdleTimeout.
      await waitFor(() => / dns .* idle /.test(proc.stderr()), "access log line", 5_000);

      // Kill the backend this client lands on: its next sessions must move to the other one
      // within the passive bound. Active checks run only every 60s here, so passive reports
      // decide: each session with a query unanswered for replyTimeout is one failure, and
      // `fall` of them eject a healthy backend. kdig opens one session per run (a new source
      // port; Maglev keeps the address on the dead backend until it is out), so the bound is
      // `fall` runs of its 1s timeout, then one more run that is answered.
      const victim = servers.find((s) => s.name === udp.text)!;
      const survivor = servers.find((s) => s !== victim)!;
      await victim.kill();
      const killedAt = performance.now();
      let moved = "";
      let attempts = 0;
      while (performance.now() - killedAt < 8_000) {
        attempts++;
        moved = (await kdig("127.0.0.1", port, ["who.test", "TXT"], { timeoutS: 1 })).text;
        if (moved === survivor.name) break;
      }
      const movedMs = performance.now() - killedAt;
      assert.equal(moved, survivor.name);
      assert.ok(attempts <= 3 + 1, `moved after ${attempts} kdig runs`);
      assert.ok(movedMs < (3 + 1) * 1_000 + 300 + 500, `moved after ${Math.round(movedMs)}ms`);
      console.log(`failover after ${Math.round(movedMs)}ms, ${attempts} kdig run(s)`);
    } finally {
      await proc.stop();
      await Promise.all(servers.map((s) => s.kill()));
      await Deno.remove(dir, { recursive: true });
    }
  },
});
