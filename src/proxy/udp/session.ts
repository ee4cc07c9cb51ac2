/**
 * One UDP session: a client address and port, the backend its lease names, and the socket
 * that talks to that backend.
 *
 * @module
 */
import type { ClientInfo, Lease } from "../../core/types.ts";
import type { UdpSessionOutcome } from "./stats.ts";

/** The session key of a client: `address|port` (IPv6 addresses contain `:`, never `|`). */
export function sessionKey(address: string, port: number): string {
  return `${address}|${port}`;
}

/**
 * State of one session. Owned by its listener: the listener opens the socket, mutates the
 * counters and ends the session exactly once with {@linkcode UdpSession.end}.
 */
export class UdpSession {
  /** {@linkcode sessionKey} of the client. */
  readonly key: string;
  /** The client, as balancers see it. */
  readonly client: ClientInfo;
  /** Where replies go: the client's address and port. */
  readonly clientAddr: Deno.NetAddr;
  /** The backend slot; released when the session ends. */
  readonly lease: Lease;
  /** Bound to an ephemeral port; sends to and receives from the backend only. */
  readonly socket: Deno.DatagramConn;
  /** Receive buffer of the backend socket, one byte over `bufferSize` to see truncation. */
  readonly buffer: Uint8Array<ArrayBuffer>;
  /** Clock reading (ms) when the session opened. */
  readonly startedAt: number;
  /** Clock reading of the last datagram either way. */
  lastActivityAt: number;
  /**
   * Clock reading of the oldest client datagram not followed by a backend reply; `undefined`
   * after a reply.
   */
  unansweredSince: number | undefined;
  /** True once the backend replied at all. */
  hasReplied = false;
  datagramsFromClient = 0;
  datagramsToClient = 0;
  bytesFromClient = 0;
  bytesToClient = 0;
  /** Settles when the backend receive loop ends. */
  relay: Promise<void> = Promise.resolve();
  /** Listens on the lease's signal for the backend's removal; removed when the session ends. */
  onRemoved: (() => void) | undefined;
  #outcome: UdpSessionOutcome | undefined;

  constructor(
    client: Deno.NetAddr,
    lease: Lease,
    socket: Deno.DatagramConn,
    bufferSize: number,
    now: number,
  ) {
    this.key = sessionKey(client.hostname, client.port);
    this.client = { address: client.hostname, port: client.port };
    this.clientAddr = client;
    this.lease = lease;
    this.socket = socket;
    this.buffer = new Uint8Array(bufferSize + 1);
    this.startedAt = now;
    this.lastActivityAt = now;
    this.unansweredSince = undefined;
  }

  /** How it ended; `undefined` while open. */
  get outcome(): UdpSessionOutcome | undefined {
    return this.#outcome;
  }

  /**
   * Closes the backend socket (its receive loop then ends) and releases the lease.
   * @returns false when the session had ended already (nothing is done then)
   */
  end(outcome: UdpSessionOutcome): boolean {
    if (this.#outcome !== undefined) return false;
    this.#outcome = outcome;
    try {
      this.socket.close();
    } catch {
      // closed already
    }
    this.lease.release();
    return true;
  }
}
