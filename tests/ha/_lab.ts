/**
 * A small network in namespaces for the high-availability suite: a switch (a bridge in its
 * own namespace), two instance namespaces (`a`, `b`), a backend namespace, a router and a
 * client that reaches the instances both on the LAN (VRRP) and through the router (ECMP),
 * from many source addresses. The host joins the LAN too, to read the admin endpoints.
 *
 * ```
 *  host 10.231.1.254 ─┐                        ┌─ a   10.231.1.11 (+ VIP 10.231.100.1 on lo)
 *  client 10.231.1.100┼── switch (bridge) ─────┼─ b   10.231.1.12 (+ VIP 10.231.100.1 on lo)
 *  backends 10.231.1.201                       └─ router 10.231.1.1 ── 10.231.3.0/24 ── client
 *                                                             (client sources 10.231.4.0/23)
 * ```
 * VRRP address: 10.231.1.10 (on the LAN). ECMP address: 10.231.100.1 (through the router).
 *
 * Every name starts with `ha`; everything lives in 10.231.0.0/16 and goes with
 * {@linkcode Lab.delete}. Also the rendering of the `deploy/` templates the suite runs.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { run } from "../reliability/_netns.ts";

export { run };

/** The LAN prefix every instance, the client and the backends share. */
export const LAN = "10.231.1";
/** The address keepalived moves between the instances. */
export const VRRP_VIP = `${LAN}.10`;
/** The address both instances announce over BGP. */
export const ECMP_VIP = "10.231.100.1";
/** Instance addresses on the LAN. */
export const INSTANCE_ADDRESS = { a: `${LAN}.11`, b: `${LAN}.12` } as const;
/** The router's address on the LAN. */
export const ROUTER_ADDRESS = `${LAN}.1`;
/** The client's address on the LAN. */
export const CLIENT_ADDRESS = `${LAN}.100`;
/** The backends' address on the LAN. */
export const BACKEND_ADDRESS = `${LAN}.201`;
/** The host's address on the LAN. */
export const HOST_ADDRESS = `${LAN}.254`;
/** Client source addresses behind the router, 256 of them (10.231.4.1 - 10.231.5.0). */
export const CLIENT_SOURCES: readonly string[] = Array.from({ length: 256 }, (_, i) => {
  const n = 4 * 256 + 1 + i;
  return `10.231.${n >> 8}.${n & 255}`;
});

/** Instance names. */
export type InstanceName = "a" | "b";

/** Namespace roles of the lab. */
export type Role = "switch" | InstanceName | "client" | "backends" | "router";

const ROLE_SUFFIX: Record<Role, string> = {
  switch: "sw",
  a: "a",
  b: "b",
  client: "c",
  backends: "k",
  router: "r",
};

/** The repository root, for `deploy/` files. */
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Tools the suite runs; the Debian package that has each. */
const TOOLS: Readonly<Record<string, string>> = {
  ip: "iproute2",
  nft: "nftables",
  keepalived: "keepalived",
  bird: "bird2",
  birdc: "bird2",
  curl: "curl",
  ss: "iproute2",
  sysctl: "procps",
  stdbuf: "coreutils",
};

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

/** Why the suite cannot run here (root, Linux, tools), or `undefined` when it can. */
export function labUnavailable(): string | undefined {
  if (Deno.build.os !== "linux") return "it needs Linux network namespaces";
  if (Deno.uid() !== 0) return "it needs root for network namespaces";
  const missing = [...new Set(Object.keys(TOOLS).filter((t) => !onPath(t)).map((t) => TOOLS[t]))];
  if (missing.length > 0) {
    return `missing Debian packages ${missing.join(", ")} (scripts/ha_install.sh installs them)`;
  }
  return undefined;
}

let hasNoticed = false;

/**
 * Whether the HA tests should be ignored: without root or the tools they skip with one
 * notice line, unless `NAUTILUS_HA_REQUIRED=1`, which makes the missing part an error.
 */
export function ignoreHa(): boolean {
  const reason = labUnavailable();
  if (reason === undefined) return false;
  if (Deno.env.get("NAUTILUS_HA_REQUIRED") === "1") {
    throw new Error(`Cannot run the high-availability tests: ${reason}`);
  }
  if (!hasNoticed) {
    hasNoticed = true;
    console.error(`Skipping the high-availability tests: ${reason}`);
  }
  return true;
}

let sequence = 0;

/**
 * The namespaces, links and addresses of one lab. Ownership: the creator calls
 * {@linkcode Lab.delete} (or `await using`); it removes every namespace and link it made.
 */
export class Lab {
  /** Short unique tag, part of every name. */
  readonly tag: string;
  readonly #made: string[] = [];
  readonly #hostLink: string;
  #isDeleted = false;

  private constructor(tag: string) {
    this.tag = tag;
    this.#hostLink = `${tag}h`;
  }

  /** Namespace name of `role`. */
  ns(role: Role): string {
    return `${this.tag}${ROLE_SUFFIX[role]}`;
  }

  /** The argv prefix that runs a command in `role`'s namespace. */
  prefix(role: Role): readonly string[] {
    return ["ip", "netns", "exec", this.ns(role)];
  }

  /** Runs a command in `role`'s namespace and returns its stdout. */
  exec(role: Role, args: readonly string[], stdin?: string): Promise<string> {
    return run([...this.prefix(role), ...args], stdin);
  }

  /** Builds the whole network; deletes what it made when a step fails. */
  static async create(): Promise<Lab> {
    sequence++;
    const lab = new Lab(`ha${(Deno.pid % 46_656).toString(36)}${sequence % 10}`);
    try {
      await lab.#build();
    } catch (error) {
      await lab.delete();
      throw new Error(
        `Cannot build the HA lab ${lab.tag} (left over from a killed run? delete its ha* namespaces)`,
        { cause: error },
      );
    }
    return lab;
  }

  async #build(): Promise<void> {
    const roles: Role[] = ["switch", "a", "b", "client", "backends", "router"];
    for (const role of roles) {
      await run(["ip", "netns", "add", this.ns(role)]);
      this.#made.push(this.ns(role));
      await this.exec(role, ["ip", "link", "set", "lo", "up"]);
    }
    const sw = this.ns("switch");
    const bridge = `${this.tag}br`;
    await run(["ip", "-n", sw, "link", "add", bridge, "type", "bridge"]);
    await run(["ip", "-n", sw, "link", "set", bridge, "up"]);
    // One port per LAN member: `eth0` inside, `<tag>p<suffix>` on the switch.
    const lan: [Role, string][] = [
      ["a", INSTANCE_ADDRESS.a],
      ["b", INSTANCE_ADDRESS.b],
      ["client", CLIENT_ADDRESS],
      ["backends", BACKEND_ADDRESS],
      ["router", ROUTER_ADDRESS],
    ];
    for (const [role, address] of lan) {
      const port = `${this.tag}p${ROLE_SUFFIX[role]}`;
      await run([
        "ip",
        "link",
        "add",
        port,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        this.ns(role),
      ]);
      await run(["ip", "link", "set", port, "netns", sw]);
      await run(["ip", "-n", sw, "link", "set", port, "master", bridge, "up"]);
      await this.exec(role, ["ip", "addr", "add", `${address}/24`, "dev", "eth0"]);
      await this.exec(role, ["ip", "link", "set", "eth0", "up"]);
    }
    // The host, to read admin endpoints.
    await run([
      "ip",
      "link",
      "add",
      this.#hostLink,
      "type",
      "veth",
      "peer",
      "name",
      `${this.tag}ph`,
      "netns",
      sw,
    ]);
    await run(["ip", "-n", sw, "link", "set", `${this.tag}ph`, "master", bridge, "up"]);
    await run(["ip", "addr", "add", `${HOST_ADDRESS}/24`, "dev", this.#hostLink]);
    await run(["ip", "link", "set", this.#hostLink, "up"]);
    // The router's second leg, toward the client's many source addresses.
    await run([
      "ip",
      "link",
      "add",
      `${this.tag}rc`,
      "netns",
      this.ns("router"),
      "type",
      "veth",
      "peer",
      "name",
      "uplink",
      "netns",
      this.ns("client"),
    ]);
    await this.exec("router", ["ip", "addr", "add", "10.231.3.1/24", "dev", `${this.tag}rc`]);
    await this.exec("router", ["ip", "link", "set", `${this.tag}rc`, "up"]);
    await this.exec("router", ["ip", "route", "add", "10.231.4.0/23", "via", "10.231.3.2"]);
    await this.exec("router", ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await this.exec("router", ["sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=0"]);
    await this.exec("client", ["ip", "addr", "add", "10.231.3.2/24", "dev", "uplink"]);
    await this.exec("client", ["ip", "link", "set", "uplink", "up"]);
    await this.exec(
      "client",
      ["ip", "-batch", "-"],
      CLIENT_SOURCES.map((s) => `addr add ${s}/32 dev uplink`).join("\n") + "\n",
    );
    await this.exec("client", ["ip", "route", "add", `${ECMP_VIP}/32`, "via", "10.231.3.1"]);
    // The instances answer the ECMP clients through the router, and hold the ECMP address.
    for (const role of ["a", "b"] as const) {
      await this.exec(role, ["ip", "route", "add", "10.231.3.0/24", "via", ROUTER_ADDRESS]);
      await this.exec(role, ["ip", "route", "add", "10.231.4.0/23", "via", ROUTER_ADDRESS]);
      await this.exec(role, ["ip", "addr", "add", `${ECMP_VIP}/32`, "dev", "lo"]);
    }
  }

  /** Sets the instance's LAN port on the switch down or up: the host gone from the wire. */
  async setLink(role: InstanceName, isUp: boolean): Promise<void> {
    await run([
      "ip",
      "-n",
      this.ns("switch"),
      "link",
      "set",
      `${this.tag}p${ROLE_SUFFIX[role]}`,
      isUp ? "up" : "down",
    ]);
  }

  /** Whether `address` sits on `role`'s `eth0` now. */
  async hasAddress(role: InstanceName, address: string): Promise<boolean> {
    const out = await this.exec(role, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    return out.includes(` ${address}/`);
  }

  /** Deletes every namespace (and with them their links); safe to call twice. */
  async delete(): Promise<void> {
    if (this.#isDeleted) return;
    this.#isDeleted = true;
    await run(["ip", "link", "delete", this.#hostLink]).catch(() => {});
    for (const ns of this.#made.reverse()) {
      await run(["ip", "netns", "delete", ns]).catch(() => {});
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.delete();
  }
}

/**
 * Renders a `deploy/` template as `envsubst` does: every `${NAME}` is replaced by
 * `values[NAME]`. Throws on a name without a value, so the suite runs the file as shipped.
 */
export async function renderTemplate(
  relativePath: string,
  values: Readonly<Record<string, string>>,
): Promise<string> {
  const text = await Deno.readTextFile(`${REPO_ROOT}${relativePath}`);
  return text.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) {
      throw new Error(`Cannot render ${relativePath}: no value for \${${name}}`);
    }
    return value;
  });
}
