/**
 * Network namespaces for fault injection: each {@linkcode NetNs} is a fresh namespace joined
 * to the host by a veth pair on a private /30 (`10.200.X.Y`), so faults (dropped SYNs, loss,
 * delay) apply to traffic toward one backend only and vanish when the namespace is deleted.
 *
 * Needs root, `ip` and `tc` (Debian `iproute2`) and `nft` (`nftables`) or `iptables`.
 * When they are missing, {@linkcode netnsUnavailable} says what to install and
 * {@linkcode ignoreWithoutNetns} skips the tests with one notice line, or fails with that
 * message when `NAUTILUS_NETNS_REQUIRED=1` (as CI sets it).
 *
 * @module
 */

/** Why namespaces cannot be used here (with what to install), or `undefined` when they can. */
export function netnsUnavailable(): string | undefined {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "network namespaces need root (run the tests as root)";
  const missing: string[] = [];
  if (!onPath("ip") || !onPath("tc")) missing.push("iproute2 (ip, tc)");
  if (!onPath("nft") && !onPath("iptables")) missing.push("nftables (nft) or iptables");
  if (missing.length > 0) {
    return `missing tools for network namespaces: install the Debian packages ${
      missing.join(", ")
    }`;
  }
  return undefined;
}

/** Environment variables that decide what happens when namespaces are unavailable. */
export interface NetnsEnv {
  /** `NAUTILUS_NETNS_REQUIRED`: `1` makes a missing prerequisite a failure (CI sets it). */
  readonly required?: string;
  /** `NAUTILUS_NETNS`: `skip` skips even where namespaces are available. */
  readonly netns?: string;
}

/**
 * Whether tests that need namespaces should be skipped, given why namespaces are unavailable
 * (`undefined` when they are) and the environment. A skip comes with one notice line.
 * @returns `skip` and, when skipping, the `notice` to print
 * @throws {Error} naming the reason and what to install when `required` is `1`
 */
export function netnsDecision(
  what: string,
  reason: string | undefined,
  env: NetnsEnv,
): { readonly skip: boolean; readonly notice?: string } {
  if (reason === undefined && env.netns !== "skip") return { skip: false };
  if (env.required === "1") {
    throw new Error(
      `Cannot run the ${what}: ${reason ?? "NAUTILUS_NETNS=skip"} ` +
        "(NAUTILUS_NETNS_REQUIRED=1 requires them)",
    );
  }
  return {
    skip: true,
    notice: `${what} skipped: ${reason ?? "NAUTILUS_NETNS=skip"} ` +
      "(NAUTILUS_NETNS_REQUIRED=1 fails instead)",
  };
}

/** The variables {@linkcode netnsDecision} reads, from the process environment. */
export function netnsEnv(): NetnsEnv {
  return {
    required: Deno.env.get("NAUTILUS_NETNS_REQUIRED"),
    netns: Deno.env.get("NAUTILUS_NETNS"),
  };
}

/**
 * Returns whether the tests of `what` should be ignored: when namespaces are unavailable
 * here (e.g. without root) they are skipped with one notice line on stdout, unless
 * `NAUTILUS_NETNS_REQUIRED=1` (CI), which throws instead; `NAUTILUS_NETNS=skip` skips them
 * anywhere.
 * @param reason why they cannot run, when the tests need more than {@linkcode netnsUnavailable}
 *   checks (a kernel feature)
 */
export function ignoreWithoutNetns(
  what = "network fault tests",
  reason: string | undefined = netnsUnavailable(),
): boolean {
  const { skip, notice } = netnsDecision(what, reason, netnsEnv());
  if (notice !== undefined) console.log(notice);
  return skip;
}

function onPath(tool: string): boolean {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin"]);
  return dirs.some((dir) => {
    try {
      return Deno.statSync(`${dir}/${tool}`).isFile;
    } catch {
      return false;
    }
  });
}

/** Runs a command, throwing with its stderr when it fails. */
export async function run(args: readonly string[], stdin?: string): Promise<string> {
  const [cmd, ...rest] = args;
  const child = new Deno.Command(cmd!, {
    args: rest,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  if (code !== 0) {
    throw new Error(
      `Command failed with exit code ${code}: ${args.join(" ")}: ${decoder.decode(stderr).trim()}`,
    );
  }
  return decoder.decode(stdout);
}

let sequence = 0;

/** How {@linkcode NetNs.degrade} shaped the path: netem when the kernel has it. */
export type DegradeMethod = "netem" | "tbf+nft-loss" | "tbf+iptables-loss";

/**
 * One namespace with a veth pair: `hostAddress` on the host side, `address` inside.
 * Ownership: the creator must call {@linkcode NetNs.delete} (or use `await using`); deleting
 * the namespace removes the veth pair, its addresses and every rule set inside it.
 */
export class NetNs {
  /** Namespace name, unique per process and call. */
  readonly name: string;
  /** The address of the host side of the veth pair. */
  readonly hostAddress: string;
  /** The address inside the namespace; bind backends here. */
  readonly address: string;
  readonly #hostLink: string;
  readonly #nsLink: string;
  #isDeleted = false;

  private constructor(tag: string, octet: number, base: number) {
    this.name = `nlb-${tag}`;
    this.#hostLink = `nlh${tag}`;
    this.#nsLink = `nln${tag}`;
    this.hostAddress = `10.200.${octet}.${base + 1}`;
    this.address = `10.200.${octet}.${base + 2}`;
  }

  /** Creates the namespace, the veth pair and the addresses; cleans up if a step fails. */
  static async create(): Promise<NetNs> {
    const reason = netnsUnavailable();
    if (reason !== undefined) throw new Error(`Cannot create a network namespace: ${reason}`);
    sequence++;
    const tag = `${Deno.pid % 100_000}${String.fromCharCode(97 + (sequence % 26))}`;
    const octet = (Deno.pid + sequence * 7) % 256;
    const base = 4 * ((Deno.pid >> 8) % 64);
    const ns = new NetNs(tag, octet, base);
    try {
      await run(["ip", "netns", "add", ns.name]);
      await ns.exec(["ip", "link", "set", "lo", "up"]);
      await run(["ip", "link", "add", ns.#hostLink, "type", "veth", "peer", "name", ns.#nsLink]);
      await run(["ip", "link", "set", ns.#nsLink, "netns", ns.name]);
      await run(["ip", "addr", "add", `${ns.hostAddress}/30`, "dev", ns.#hostLink]);
      await run(["ip", "link", "set", ns.#hostLink, "up"]);
      await ns.exec(["ip", "addr", "add", `${ns.address}/30`, "dev", ns.#nsLink]);
      await ns.exec(["ip", "link", "set", ns.#nsLink, "up"]);
    } catch (error) {
      await ns.delete();
      throw new Error(`Cannot create network namespace ${ns.name}`, { cause: error });
    }
    return ns;
  }

  /** Runs a command inside the namespace and returns its stdout. */
  exec(args: readonly string[], stdin?: string): Promise<string> {
    return run(["ip", "netns", "exec", this.name, ...args], stdin);
  }

  /** The argv prefix that runs a long-lived command inside the namespace. */
  get execPrefix(): readonly string[] {
    return ["ip", "netns", "exec", this.name];
  }

  /** Silently drops new connections (SYNs) to `port` inside the namespace: a blackhole. */
  async dropSyns(port: number): Promise<void> {
    if (onPath("nft")) {
      await this.exec(
        ["nft", "-f", "-"],
        `table inet nlb_blackhole {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport ${port} tcp flags & (syn | ack) == syn drop
  }
}
`,
      );
    } else {
      await this.exec([
        "iptables",
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "--dport",
        `${port}`,
        "--syn",
        "-j",
        "DROP",
      ]);
    }
  }

  /**
   * Makes the path through the namespace slow and lossy: `delayMs` more latency and
   * `lossPercent` % packet loss with netem where the kernel has it; otherwise a 100 ms-deep
   * token-bucket rate limit (tbf) plus random loss in the firewall, both directions.
   */
  async degrade(delayMs: number, lossPercent: number): Promise<DegradeMethod> {
    try {
      await this.exec([
        "tc",
        "qdisc",
        "add",
        "dev",
        this.#nsLink,
        "root",
        "netem",
        "delay",
        `${delayMs}ms`,
        "loss",
        `${lossPercent}%`,
      ]);
      return "netem";
    } catch (error) {
      if (!String(error).includes("unknown")) throw error;
    }
    await this.exec([
      "tc",
      "qdisc",
      "add",
      "dev",
      this.#nsLink,
      "root",
      "tbf",
      "rate",
      "20mbit",
      "burst",
      "32kb",
      "latency",
      `${delayMs}ms`,
    ]);
    // A loss of p % per packet: one packet in (100 / p), chosen at random.
    const modulus = Math.round(100 / lossPercent);
    if (onPath("nft")) {
      await this.exec(
        ["nft", "-f", "-"],
        `table inet nlb_loss {
  chain input {
    type filter hook input priority 0; policy accept;
    meta l4proto tcp numgen random mod ${modulus} == 0 drop
  }
  chain output {
    type filter hook output priority 0; policy accept;
    meta l4proto tcp numgen random mod ${modulus} == 0 drop
  }
}
`,
      );
      return "tbf+nft-loss";
    }
    for (const chain of ["INPUT", "OUTPUT"]) {
      await this.exec([
        "iptables",
        "-A",
        chain,
        "-p",
        "tcp",
        "-m",
        "statistic",
        "--mode",
        "random",
        "--probability",
        `${lossPercent / 100}`,
        "-j",
        "DROP",
      ]);
    }
    return "tbf+iptables-loss";
  }

  /** Deletes the namespace (and with it the veth pair); safe to call twice. */
  async delete(): Promise<void> {
    if (this.#isDeleted) return;
    this.#isDeleted = true;
    await run(["ip", "netns", "delete", this.name]).catch(() => {});
    // The host end normally goes with its peer; make sure it does.
    await run(["ip", "link", "delete", this.#hostLink]).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.delete();
  }
}
