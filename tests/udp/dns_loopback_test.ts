/**
 * UDP listeners in front of real DNS servers on loopback: dnsmasq backends, `kdig` clients,
 * the DNS health probe against dnsmasq. Skips with a notice without dnsmasq and kdig, unless
 * `NAUTILUS_UDP_REQUIRED=1`.
 */
import assert from "node:assert/strict";
import { probeDns } from "../../src/health/mod.ts";
import { backendAt } from "../_helpers.ts";
import { startUdpProxy } from "../_udp_helpers.ts";
import { dig, haveTools, kdig, startDnsmasq, startUnbound } from "./_dns_peers.ts";

const ok = haveTools("UDP DNS loopback tests", ["dnsmasq", "kdig"]);
const hasUnbound = haveTools("UDP unbound tests", ["unbound", "dig", "dnsperf"]);

Deno.test({
  name: "udp dns: kdig gets dnsmasq's answers through the listener, one backend per client",
  ignore: !ok,
  fn: async () => {
    const servers = await Promise.all(["d1", "d2", "d3"].map((n) => startDnsmasq(n)));
    const proxy = startUdpProxy(servers.map((s) => backendAt(s.port)));
    try {
      const a = await kdig("127.0.0.1", proxy.port, ["d1.test", "A"]);
      // d1.test is known only to d1; the others refuse it. Ask who answers instead.
      const who = await kdig("127.0.0.1", proxy.port, ["who.test", "TXT"]);
      assert.ok(["d1", "d2", "d3"].includes(who.text), `got ${JSON.stringify(who.text)}`);
      if (who.text === "d1") assert.equal(a.text, "192.0.2.1");
      // Every kdig run uses a new source port: Maglev on the address keeps the backend.
      for (let i = 0; i < 5; i++) {
        assert.equal((await kdig("127.0.0.1", proxy.port, ["who.test", "TXT"])).text, who.text);
      }
      assert.equal(proxy.listener.stats.accepted, 7);
      assert.equal(proxy.listener.stats.datagramsToClients, 7);
    } finally {
      await proxy.listener.shutdown(0);
      proxy.pool.close();
      await Promise.all(servers.map((s) => s.kill()));
    }
  },
});

Deno.test({
  name: "udp dns: the DNS probe passes on dnsmasq, fails once it is killed",
  ignore: !ok,
  fn: async () => {
    const server = await startDnsmasq("p1");
    const target = { host: "127.0.0.1", port: server.port };
    try {
      assert.deepEqual((await probeDns(target, { name: "p1.test", timeoutMs: 1_000 })).ok, true);
      const refused = await probeDns(target, { name: "elsewhere.example", timeoutMs: 1_000 });
      assert.equal(refused.error, "rcode REFUSED");
    } finally {
      await server.kill();
    }
    const dead = await probeDns(target, { name: "p1.test", timeoutMs: 300 });
    assert.equal(dead.ok, false);
    assert.equal(dead.error, "timed out after 300ms");
  },
});

Deno.test({
  name: "udp dns: unbound and dnsmasq behind one listener, asked by dig and dnsperf",
  ignore: !ok || !hasUnbound,
  fn: async () => {
    const servers = [await startUnbound("u1"), await startDnsmasq("m1")];
    const proxy = startUdpProxy(servers.map((s) => backendAt(s.port)), {
      balancer: "round_robin",
    });
    const dir = await Deno.makeTempDir({ prefix: "nlb-udp-" });
    try {
      // dig opens one socket per run: a session each, round robin alternates the servers.
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) seen.add(await dig("127.0.0.1", proxy.port, ["who.test", "TXT"]));
      assert.deepEqual([...seen].sort(), ["m1", "u1"]);
      // dnsperf: 4 clients, 1 s; every query answered.
      await Deno.writeTextFile(`${dir}/q.txt`, "health.test A\n");
      const { stdout } = await new Deno.Command("dnsperf", {
        args: [
          "-s",
          "127.0.0.1",
          "-p",
          String(proxy.port),
          "-d",
          `${dir}/q.txt`,
          "-l",
          "1",
          "-c",
          "4",
          "-q",
          "16",
        ],
        stdout: "piped",
        stderr: "null",
      }).output();
      const text = new TextDecoder().decode(stdout);
      const sent = Number(/Queries sent:\s+(\d+)/.exec(text)?.[1]);
      const lost = Number(/Queries lost:\s+(\d+)/.exec(text)?.[1]);
      assert.ok(sent > 100, text);
      assert.equal(lost, 0, text);
      assert.match(text, /NOERROR \d+ \(100\.00%\)/);
    } finally {
      await proxy.listener.shutdown(0);
      proxy.pool.close();
      await Promise.all(servers.map((s) => s.kill()));
      await Deno.remove(dir, { recursive: true });
    }
  },
});
