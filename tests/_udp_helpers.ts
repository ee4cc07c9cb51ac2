/**
 * UDP test peers on `127.0.0.1` port 0: a backend that answers every datagram with its name
 * and the datagram, and a client socket with bounded waits.
 *
 * @module
 */
import { createBalancer } from "../src/balancer/mod.ts";
import type { Backend, BalancerKind } from "../src/core/types.ts";
import { Pool, type PoolOptions } from "../src/pool/mod.ts";
import { UdpListener, type UdpListenerOptions } from "../src/proxy/mod.ts";
import { backendAt, HOST, WAIT_MS } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A UDP backend answering `NAME:DATAGRAM` to the sender, unless muted. */
export class UdpEcho {
  readonly name: string;
  readonly port: number;
  /** Source `address:port` of every datagram received, in order. */
  readonly peers: string[] = [];
  /** Text of every datagram received, in the order of {@linkcode UdpEcho.peers}. */
  readonly texts: string[] = [];
  /** When true, datagrams are counted but not answered. */
  isMuted = false;
  /** Milliseconds to wait before answering. */
  delayMs = 0;
  #socket: Deno.DatagramConn;
  #loop: Promise<void>;

  constructor(name: string, port = 0) {
    this.name = name;
    this.#socket = Deno.listenDatagram({ hostname: HOST, port, transport: "udp" });
    this.port = (this.#socket.addr as Deno.NetAddr).port;
    this.#loop = this.#serve();
  }

  /** This server as a pool backend. */
  get backend(): Backend {
    return backendAt(this.port);
  }

  async #serve(): Promise<void> {
    const buffer = new Uint8Array(65_536);
    while (true) {
      let data: Uint8Array;
      let from: Deno.NetAddr;
      try {
        const [d, a] = await this.#socket.receive(buffer);
        data = d;
        from = a as Deno.NetAddr;
      } catch {
        return;
      }
      this.peers.push(`${from.hostname}:${from.port}`);
      this.texts.push(decoder.decode(data));
      if (this.isMuted) continue;
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      const reply = encoder.encode(`${this.name}:${decoder.decode(data)}`);
      await this.#socket.send(reply, from).catch(() => {});
    }
  }

  /** Sends a datagram from this backend's socket (to forge replies from the backend port). */
  send(text: string, to: Deno.NetAddr): Promise<number> {
    return this.#socket.send(encoder.encode(text), to);
  }

  async close(): Promise<void> {
    try {
      this.#socket.close();
    } catch {
      // closed already
    }
    await this.#loop;
  }
}

/** A client socket on `127.0.0.1` port 0 with bounded receives. */
export class UdpClient {
  readonly socket: Deno.DatagramConn;

  constructor(hostname = HOST) {
    this.socket = Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
  }

  get port(): number {
    return (this.socket.addr as Deno.NetAddr).port;
  }

  send(text: string | Uint8Array, port: number, hostname = HOST): Promise<number> {
    const data = typeof text === "string" ? encoder.encode(text) : text;
    return this.socket.send(data, { transport: "udp", hostname, port });
  }

  /**
   * The next datagram as text with its sender, or `undefined` when none arrives within
   * `waitMs`. A receive still pending then is left to {@linkcode UdpClient.close}.
   */
  async receive(waitMs = WAIT_MS): Promise<{ text: string; from: Deno.NetAddr } | undefined> {
    this.#pending ??= this.socket.receive(new Uint8Array(65_536));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const result = await Promise.race([
      this.#pending.then(([data, from]) => ({
        text: decoder.decode(data),
        from: from as Deno.NetAddr,
      })),
      new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), waitMs)),
    ]);
    clearTimeout(timer);
    if (result !== undefined) this.#pending = undefined;
    return result;
  }

  /** Sends and waits for one reply. */
  async ask(text: string, port: number, waitMs = WAIT_MS): Promise<string | undefined> {
    await this.send(text, port);
    return (await this.receive(waitMs))?.text;
  }

  #pending: Promise<[Uint8Array, Deno.Addr]> | undefined;

  async close(): Promise<void> {
    try {
      this.socket.close();
    } catch {
      // closed already
    }
    await this.#pending?.catch(() => {});
  }
}

/** A UDP listener on `127.0.0.1` port 0 in front of a real pool with `backends`. */
export function startUdpProxy(
  backends: readonly Backend[],
  options: {
    balancer?: BalancerKind;
    pool?: Partial<PoolOptions>;
    listener?: Partial<UdpListenerOptions>;
  } = {},
): { listener: UdpListener; pool: Pool; port: number; serving: Promise<void> } {
  const pool = new Pool({
    name: "udp",
    balancer: createBalancer(options.balancer ?? "maglev"),
    ...options.pool,
  });
  pool.update(backends);
  const listener = new UdpListener({
    name: "udp",
    hostname: HOST,
    port: 0,
    picker: pool,
    ...options.listener,
  });
  const port = listener.listen().port;
  const serving = listener.serve();
  return { listener, pool, port, serving };
}
