/**
 * Handover under steady load: a new `serve` binds the same listener (SO_REUSEPORT), gets
 * ready, and the old one gets SIGTERM and drains (`scripts/handover.sh`). Runs inside a
 * network namespace this test creates, once with `net.ipv4.tcp_migrate_req=1` (queued
 * connections of the closing listener move to the new one: nothing may be lost) and once
 * with 0 (they are reset: the count is reported, not asserted).
 *
 * Needs Linux >= 5.14, root (for `ip netns`) and iproute2; skipped otherwise with one notice
 * line, unless `NAUTILUS_NETNS_REQUIRED=1`.
 */
import assert from "node:assert/strict";
import type { HandoverResult } from "./_handover_run.ts";
import { ignoreWithoutNetns } from "./reliability/_netns.ts";

const RATE = 1_000;
const MAX_SECONDS = 30;
const STREAMS = 50;

function kernelAtLeast(release: string, major: number, minor: number): boolean {
  const match = /^(\d+)\.(\d+)/.exec(release);
  if (match === null) return false;
  const [a, b] = [Number(match[1]), Number(match[2])];
  return a > major || (a === major && b >= minor);
}

function whyNot(): string | undefined {
  if (Deno.build.os !== "linux") return "not Linux";
  if (!kernelAtLeast(Deno.osRelease(), 5, 14)) {
    return `kernel ${Deno.osRelease()} has no tcp_migrate_req (needs 5.14)`;
  }
  if (Deno.uid() !== 0) return "not root (ip netns needs it)";
  try {
    Deno.statSync("/usr/sbin/ip");
  } catch {
    try {
      Deno.statSync("/sbin/ip");
    } catch {
      return "no ip command (iproute2)";
    }
  }
  return undefined;
}

async function run(cmd: string[]): Promise<string> {
  const out = await new Deno.Command(cmd[0]!, { args: cmd.slice(1), stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

async function handoverIn(migrate: 0 | 1): Promise<HandoverResult> {
  const ns = `nlbho${Deno.pid}m${migrate}`;
  await run(["ip", "netns", "add", ns]);
  try {
    await run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    await run(["ip", "netns", "exec", ns, "sysctl", "-qw", `net.ipv4.tcp_migrate_req=${migrate}`]);
    const out = await run([
      "ip",
      "netns",
      "exec",
      ns,
      Deno.execPath(),
      "run",
      "-A",
      "--unstable-net",
      new URL("./_handover_run.ts", import.meta.url).pathname,
      String(RATE),
      String(MAX_SECONDS),
      String(STREAMS),
    ]);
    const line = out.trim().split("\n").at(-1)!;
    return JSON.parse(line) as HandoverResult;
  } finally {
    await run(["ip", "netns", "del", ns]).catch(() => {});
  }
}

function lostOf(r: HandoverResult): number {
  return r.refused + r.reset + r.timedOut + r.streamsBad;
}

function per10k(r: HandoverResult): string {
  const total = r.attempted + r.streamsOk + r.streamsBad;
  return (lostOf(r) / total * 10_000).toFixed(1);
}

const ignore = ignoreWithoutNetns("handover test", whyNot());

Deno.test({
  name: "handover: no connection lost with tcp_migrate_req=1; the count without it is reported",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const withMigrate = await handoverIn(1);
    const without = await handoverIn(0);
    for (
      const [name, r] of [["tcp_migrate_req=1", withMigrate], [
        "tcp_migrate_req=0",
        without,
      ]] as const
    ) {
      console.log(
        `${name}: ${r.attempted} new connections in ${r.loadMs}ms (${
          Math.round(r.attempted / r.loadMs * 1000)
        }/s) + ${r.streamsOk + r.streamsBad} streams, handover ${r.handoverMs}ms: lost ${
          lostOf(r)
        } (refused ${r.refused}, reset ${r.reset}, timed out ${r.timedOut}, streams ${r.streamsBad}) = ${
          per10k(r)
        } per 10,000`,
      );
    }
    for (const r of [withMigrate, without]) {
      assert.equal(r.scriptCode, 0, "the handover script succeeded");
      assert.ok(r.attempted > 0 && r.ok > 0, "load ran");
    }
    assert.equal(withMigrate.streamsOk, STREAMS);
    assert.equal(lostOf(withMigrate), 0, JSON.stringify(withMigrate));
  },
});
