/**
 * The UDP proof across a network namespace: clients with many source addresses (`kdig -b`,
 * and a flood script) in a namespace, `serve` and dnsmasq backends in the root namespace.
 * Affinity per client address, caps, a flood that stays bounded in sessions and memory, and
 * expiry back to zero. Needs root, iproute2, dnsmasq and kdig; skips with a notice otherwise,
 * unless `NAUTILUS_UDP_REQUIRED=1`.
 */
import assert from "node:assert/strict";
import { delay } from "../_helpers.ts";
import { type Dnsmasq, haveTools, kdig, startDnsmasq } from "./_dns_peers.ts";
import { type ClientNamespace, createClientNamespace, LB_ADDRESS } from "./_netns.ts";
import { startServe } from "./_serve.ts";

const ok = haveTools("UDP namespace tests", ["ip", "dnsmasq", "kdig"], true);

function freeTcpPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Polls `check` every 100ms until it holds or `ms` passes; returns its last value. */
async function until<T>(read: () => Promise<T>, check: (v: T) => boolean, ms: number) {
  const deadline = performance.now() + ms;
  let value = await read();
  while (!check(value) && performance.now() < deadline) {
    await delay(100);
    value = await read();
  }
  return value;
}

Deno.test({
  name: "udp netns: affinity per client address, caps, a bounded flood, expiry",
  ignore: !ok,
  sanitizeResources: false,
  fn: async (t) => {
    const SOURCES = 200;
    let ns: ClientNamespace | undefined;
    const servers: Dnsmasq[] = [];
    const dir = await Deno.makeTempDir({ prefix: "nlb-udp-" });
    let serve: ReturnType<typeof startServe> | undefined;
    try {
      // dnsmasq binds LB_ADDRESS, which exists once the veth pair does.
      ns = await createClientNamespace(SOURCES);
      for (const name of ["n1", "n2", "n3"]) {
        servers.push(await startDnsmasq(name, { host: LB_ADDRESS }));
      }
      const admin = `127.0.0.1:${freeTcpPort()}`;
      const port = 20_000 + (Deno.pid % 20_000);
      await Deno.writeTextFile(
        `${dir}/config.yaml`,
        `settings:
  adminAddress: "${admin}"
configurations:
  - name: dns
    listenerAddress: "${LB_ADDRESS}:${port}"
    protocol: udp
    backends: ${JSON.stringify(servers.map((s) => `${s.host}:${s.port}`))}
    healthCheck:
      dnsQuery: health.test
      interval: 60s
    udp:
      sessionIdleTimeout: 6s
      replyTimeout: 500ms
      maxSessions: 500
      maxSessionsPerSource: 4
`,
      );
      serve = startServe(`${dir}/config.yaml`, admin);
      const proc = serve;
      const sessions = () => proc.metric('nautiluslb_udp_sessions_active{listener="dns"}');
      await until(
        () => proc.metric('nautiluslb_listener_connections_active{listener="dns"}'),
        (v) => !Number.isNaN(v),
        10_000,
      );

      const byAddress = new Map<string, Set<string>>();
      await t.step("each client address keeps its backend; addresses spread", async () => {
        for (const source of ns!.sources.slice(0, 30)) {
          for (let i = 0; i < 2; i++) {
            const answer = await kdig(LB_ADDRESS, port, ["who.test", "TXT"], {
              netns: ns!.name,
              source,
            });
            const seen = byAddress.get(source) ?? new Set();
            seen.add(answer.text);
            byAddress.set(source, seen);
          }
        }
        for (const [source, answers] of byAddress) {
          assert.equal(answers.size, 1, `${source} got ${[...answers]}`);
          assert.ok(["n1", "n2", "n3"].includes([...answers][0]!), `${source}: ${[...answers]}`);
        }
        const used = new Set([...byAddress.values()].map((s) => [...s][0]));
        assert.ok(used.size >= 2, `30 addresses all on ${[...used]}`);
      });

      await t.step("expiry: idle sessions end after sessionIdleTimeout", async () => {
        const left = await until(sessions, (n) => n === 0, 12_000);
        assert.equal(left, 0);
      });

      await t.step("a flood from 200 addresses stays within the caps and memory", async () => {
        const rssBefore = await proc.rssKiB();
        const dropsBefore = {
          limit: await proc.metric('nautiluslb_udp_drops_total{listener="dns",cause="limit"}'),
          source: await proc.metric(
            'nautiluslb_udp_drops_total{listener="dns",cause="source_limit"}',
          ),
        };
        const PER_SOURCE = 10;
        const flood = await new Deno.Command("ip", {
          args: [
            "netns",
            "exec",
            ns!.name,
            Deno.execPath(),
            "run",
            "--unstable-net",
            "--allow-net",
            "--allow-read",
            new URL("./_flood.ts", import.meta.url).pathname,
            LB_ADDRESS,
            String(port),
            String(PER_SOURCE),
            ...ns!.sources,
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.equal(flood.code, 0, new TextDecoder().decode(flood.stderr));
        const sent = Number(new TextDecoder().decode(flood.stdout).trim());
        assert.equal(sent, SOURCES * PER_SOURCE);
        // The proxy works through its socket's queue after the flood has been sent: wait
        // until it has opened sessions up to the cap (the machine may be busy).
        const open = await until(sessions, (n) => n === 500, 15_000);
        const limit = await until(
          () => proc.metric('nautiluslb_udp_drops_total{listener="dns",cause="limit"}'),
          (n) => n - dropsBefore.limit > 0,
          5_000,
        );
        const sourceLimit = await proc.metric(
          'nautiluslb_udp_drops_total{listener="dns",cause="source_limit"}',
        );
        const rssAfter = await proc.rssKiB();
        console.log(
          `flood: ${sent} datagrams from ${SOURCES} addresses -> ${open} sessions, drops ` +
            `limit ${limit - dropsBefore.limit}, source_limit ${
              sourceLimit - dropsBefore.source
            }, RSS ${Math.round(rssBefore / 1024)} -> ${Math.round(rssAfter / 1024)} MiB`,
        );
        assert.equal(open, 500, `${open} sessions`);
        assert.ok(limit - dropsBefore.limit > 0);
        // Paced, nothing is lost in the kernel: every datagram opened a session or was dropped.
        assert.ok(
          open + (limit - dropsBefore.limit) + (sourceLimit - dropsBefore.source) <= sent,
        );
        // 500 sessions of 8 KiB buffers and a socket each: well under 64 MiB more.
        assert.ok(rssAfter - rssBefore < 64 * 1024, `RSS grew ${rssAfter - rssBefore} KiB`);
        assert.ok(sourceLimit - dropsBefore.source > 0);
        // The cap was reached.
        const total = await until(
          () => proc.metric('nautiluslb_udp_sessions_total{listener="dns"}'),
          (n) => n >= 500,
          3_000,
        );
        assert.ok(total >= 500, `sessions_total ${total}`);
        assert.equal(await until(sessions, (n) => n === 0, 12_000), 0);
      });

      await t.step("a killed backend's clients move within the passive bound", async () => {
        // Active checks run every 60s here: only passive reports can eject. Each client
        // asks with a 1s timeout; an unanswered query ends its session after replyTimeout
        // (500ms) and counts against the backend, which is out after one report while its
        // state is unknown (one active check so far, rise 2) and after fall (3) once healthy.
        const victim = servers.find((s) => s.name === [...byAddress.get(ns!.sources[0]!)!][0])!;
        const clients = ns!.sources.slice(0, 30).filter((a) =>
          [...byAddress.get(a)!][0] === victim.name
        );
        await victim.kill();
        const killedAt = performance.now();
        const movedAfter = new Map<string, number>();
        while (movedAfter.size < clients.length && performance.now() - killedAt < 15_000) {
          await Promise.all(
            clients.filter((a) => !movedAfter.has(a)).map(async (source) => {
              const answer = await kdig(LB_ADDRESS, port, ["who.test", "TXT"], {
                netns: ns!.name,
                source,
                timeoutS: 1,
              });
              if (answer.text !== "" && answer.text !== victim.name) {
                movedAfter.set(source, performance.now() - killedAt);
              }
            }),
          );
        }
        const slowest = Math.max(...movedAfter.values());
        console.log(
          `${clients.length} clients of ${victim.name} moved; the last after ${
            Math.round(slowest)
          }ms`,
        );
        assert.equal(movedAfter.size, clients.length);
        // Fall (3) rounds of a 1s client timeout, one answered round, and slack for load.
        assert.ok(slowest < 3 * 1_000 + 1_000 + 1_500, `${Math.round(slowest)}ms`);
      });
    } finally {
      await serve?.stop();
      await Promise.all(servers.map((s) => s.kill()));
      await ns?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
