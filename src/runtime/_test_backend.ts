/**
 * Test helpers of this folder: named loopback backends and a client that reads their name.
 *
 * @module
 */
import type { PoolPlan } from "../core/plan.ts";
import type { HealthCheckSpec, HealthTarget } from "../health/mod.ts";
import type { DataPlaneListener } from "./data_plane.ts";
import { closeQuietly } from "../core/io.ts";

/** A loopback server that writes its name to every client, then closes the connection. */
export interface NamedBackend {
  readonly name: string;
  readonly port: number;
  /** `127.0.0.1:port`, the backend key. */
  readonly key: string;
  /** Stops accepting and waits for the accept loop and open connections to end. */
  close(): Promise<void>;
}

/** Starts a {@linkcode NamedBackend} on a free port. */
export function startNamed(name: string): NamedBackend {
  const bytes = new TextEncoder().encode(name);
  return startBackend(name, async (conn) => {
    await conn.write(bytes);
  });
}

/**
 * A loopback server on a free port that runs `serve` for every connection, then closes it.
 * Closing the server also closes the connections still open, and waits for every `serve`.
 */
function startBackend(name: string, serve: (conn: Deno.Conn) => Promise<void>): NamedBackend {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      const task = (async () => {
        try {
          await serve(conn);
        } catch {
          // the client left first, or reset
        } finally {
          conns.delete(conn);
          closeQuietly(conn);
        }
      })();
      tasks.add(task);
      task.finally(() => tasks.delete(task));
    }
  })().catch(() => {});
  const port = listener.addr.port;
  return {
    name,
    port,
    key: `127.0.0.1:${port}`,
    close: async () => {
      closeQuietly(listener);
      await loop;
      for (const conn of conns) closeQuietly(conn);
      await Promise.all(tasks);
    },
  };
}

/** A port nothing listens on (bound, then released). */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** Connects to `address` (`host:port`) and reads until EOF; the text read. */
export async function nameVia(address: string): Promise<string> {
  const [hostname, port] = address.split(":");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    const chunks: string[] = [];
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(256);
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(decoder.decode(buffer.subarray(0, n)));
    }
    return chunks.join("");
  } finally {
    conn.close();
  }
}

/** A listener on a free loopback port with short timeouts, round robin, small drain. */
export function listenerSpec(name: string, overrides: Partial<DataPlaneListener> = {}) {
  return {
    name,
    host: "127.0.0.1",
    port: 0,
    balancer: "round_robin",
    maglevTableSize: 65537,
    maglevSeed: 0,
    requestTimeoutMs: 2_000,
    connectTimeoutMs: 1_000,
    idleTimeoutMs: 0,
    maxConnections: 0,
    maxConnectAttempts: 3,
    drainTimeoutMs: 200,
    onRemoval: "drain",
    whenAllUnhealthy: "reject",
    ...overrides,
  } as const satisfies DataPlaneListener;
}

/** A static plan of `name` over `ports` on 127.0.0.1. */
export function planOf(name: string, ports: readonly number[]): PoolPlan {
  return {
    name,
    listenerAddress: "127.0.0.1:0",
    backends: ports.map((port) => ({
      address: `127.0.0.1:${port}`,
      host: "127.0.0.1",
      port,
      weight: 1,
    })),
    excluded: [],
    warnings: [],
    inputWarnings: [],
    healthTargets: [],
  };
}

/** Polls `predicate` every 10 ms until it holds; throws after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs}ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Writes back what `conn` sends until the client closes. */
async function echo(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(1024);
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) break;
    await conn.write(buffer.subarray(0, n));
  }
}

/** A loopback server that echoes until the client closes, holding each connection till then. */
export function startEcho(name = "echo"): NamedBackend {
  return startBackend(name, echo);
}

/** A loopback server that writes its name to every client, then echoes until the client closes. */
export function startEchoNamed(name: string): NamedBackend {
  const bytes = new TextEncoder().encode(name);
  return startBackend(name, async (conn) => {
    await conn.write(bytes);
    await echo(conn);
  });
}

/** A client connection held open: the backend name it got (`""` when refused). */
export interface HeldClient {
  readonly conn: Deno.TcpConn;
  readonly name: string;
  /** True while the proxied connection still echoes a byte within `timeoutMs`. */
  isAlive(timeoutMs?: number): Promise<boolean>;
}

/** Connects to `address`, reads the backend's name (waiting up to `timeoutMs`) and holds on. */
export async function holdVia(address: string, nameLength = 1, timeoutMs = 3_000) {
  const [hostname, port] = address.split(":");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const read = async (n: number, ms: number): Promise<string> => {
    const buffer = new Uint8Array(n);
    let got = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), ms));
    try {
      while (got < n) {
        const r = await Promise.race([conn.read(buffer.subarray(got)).catch(() => null), timeout]);
        if (r === null) break;
        got += r;
      }
    } finally {
      clearTimeout(timer);
    }
    return new TextDecoder().decode(buffer.subarray(0, got));
  };
  const name = await read(nameLength, timeoutMs);
  return {
    conn,
    name,
    isAlive: async (ms = 2_000) => {
      try {
        await conn.write(new Uint8Array([120]));
      } catch {
        return false;
      }
      return (await read(1, ms)) === "x";
    },
  } satisfies HeldClient;
}

/** An active check that stays out of the way of a test: a round a minute, rise 2, fall 3. */
export const CHECK: HealthCheckSpec = {
  enabled: true,
  intervalMs: 60_000,
  timeoutMs: 500,
  rise: 2,
  fall: 3,
  maxEjectionPercent: 50,
};

/** One health target per planned backend, each checked with {@linkcode CHECK}. */
export function targets(plans: readonly PoolPlan[]): HealthTarget[] {
  return plans.flatMap((plan) =>
    plan.backends.map((b) => ({
      key: b.address,
      pool: plan.name,
      host: b.host,
      port: b.port,
      check: CHECK,
    }))
  );
}
