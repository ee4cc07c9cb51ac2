/**
 * A client network namespace for the UDP proof: a veth pair from the root namespace
 * (`10.232.0.1/16`, where `serve` and the DNS servers run) to a namespace whose side has
 * `10.232.0.2/16` plus `sources` more addresses `10.232.1.1`, `10.232.1.2`, … for clients
 * with distinct source addresses. Names start with `udp`; everything is deleted in
 * {@linkcode ClientNamespace.close}, also after a failed setup.
 *
 * @module
 */

/** The root namespace's address on the veth pair: where `serve` listens. */
export const LB_ADDRESS = "10.232.0.1";

/** A namespace with many client addresses. */
export interface ClientNamespace {
  /** Namespace name, for `ip netns exec`. */
  readonly name: string;
  /** The client source addresses, `10.232.1.1` on. */
  readonly sources: readonly string[];
  /** Deletes the namespace and the veth pair. Idempotent. */
  close(): Promise<void>;
}

async function ip(args: string[], input?: string): Promise<void> {
  const child = new Deno.Command("ip", {
    args,
    stdin: input === undefined ? "null" : "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  if (input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
  }
  const { code, stderr } = await child.output();
  if (code !== 0) {
    throw new Error(`Cannot run ip ${args.join(" ")}: ${new TextDecoder().decode(stderr).trim()}`);
  }
}

/** The `n`-th client address (1-based): 10.232.1.1 … 10.232.1.254, 10.232.2.1 … */
function source(n: number): string {
  return `10.232.${1 + Math.floor((n - 1) / 254)}.${1 + ((n - 1) % 254)}`;
}

/** Creates the namespace with `count` client addresses (at most 254 × 8). */
export async function createClientNamespace(count: number): Promise<ClientNamespace> {
  const name = `udp${Deno.pid % 100_000}`;
  const host = `${name}h`;
  const peer = `${name}c`;
  let isClosed = false;
  const close = async () => {
    if (isClosed) return;
    isClosed = true;
    await ip(["link", "del", host]).catch(() => {});
    await ip(["netns", "del", name]).catch(() => {});
  };
  // Left over from a run that was killed: same pid, same names.
  await ip(["link", "del", host]).catch(() => {});
  await ip(["netns", "del", name]).catch(() => {});
  try {
    await ip(["netns", "add", name]);
    await ip(["link", "add", host, "type", "veth", "peer", "name", peer]);
    await ip(["link", "set", peer, "netns", name]);
    await ip(["addr", "add", `${LB_ADDRESS}/16`, "dev", host]);
    await ip(["link", "set", host, "up"]);
    const sources = Array.from({ length: count }, (_, i) => source(i + 1));
    const batch = [
      `addr add 10.232.0.2/16 dev ${peer}`,
      ...sources.map((a) => `addr add ${a}/16 dev ${peer}`),
      `link set ${peer} up`,
      "link set lo up",
    ].join("\n") + "\n";
    await ip(["-n", name, "-batch", "-"], batch);
    return { name, sources, close };
  } catch (error) {
    await close();
    throw error;
  }
}
