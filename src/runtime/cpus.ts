/**
 * How many workers `settings.workers` means on this machine, and whether workers can run.
 *
 * @module
 */

/**
 * Counts the CPUs of a Linux CPU list such as `0-3,8,10-11` (`Cpus_allowed_list` in
 * `/proc/self/status`).
 * @returns the count, or `undefined` when `text` is not a CPU list
 */
export function parseCpuList(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  let count = 0;
  for (const part of trimmed.split(",")) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (match === null) return undefined;
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last < first) return undefined;
    count += last - first + 1;
  }
  return count;
}

/**
 * The CPUs this process may run on: the affinity mask (`Cpus_allowed_list`) where
 * `/proc/self/status` is readable, else `navigator.hardwareConcurrency`, at least 1. A
 * container's CPU quota (cgroup `cpu.max`) is not a mask; set `workers` to the quota there.
 */
export function availableCpus(): number {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const line = /^Cpus_allowed_list:\s*(.+)$/m.exec(status);
    const count = line === null ? undefined : parseCpuList(line[1]!);
    if (count !== undefined && count > 0) return count;
  } catch {
    // not Linux, or no read permission: fall back
  }
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

/**
 * Why listeners cannot run in several workers here, or `undefined` when they can: it takes
 * Linux (where `SO_REUSEPORT` spreads connections over the workers' sockets) and
 * `--unstable-net` (for `Deno.listen({ reusePort })`).
 */
export function workersUnsupported(): string | undefined {
  if (Deno.build.os !== "linux") {
    return `reusePort does not spread connections over workers on ${Deno.build.os}; set workers: 1`;
  }
  // `Deno.listenDatagram` exists exactly when the unstable net APIs are enabled.
  if (typeof (Deno as { listenDatagram?: unknown }).listenDatagram !== "function") {
    return "run with --unstable-net (needed for reusePort)";
  }
  return undefined;
}
