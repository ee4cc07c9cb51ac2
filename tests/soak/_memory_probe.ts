/**
 * Tells a memory leak from lazy garbage collection in the real `serve` CLI: runs rounds of
 * idle clients (opened, greeted, reclaimed by `idleTimeout`) against `serve --inspect`, and
 * after each round reads, from inside the serve isolate through the inspector protocol,
 * `Deno.memoryUsage()` before and after a forced full GC (`HeapProfiler.collectGarbage`),
 * plus the process RSS and descriptors from `/proc`. With `--snapshots`, it also takes a heap
 * snapshot after the first and the last round (after GC) and prints which object kinds grew.
 *
 * A heap that returns to the same size after a forced GC while RSS stays up means memory is
 * kept by the allocator or by V8's reserved pages, not leaked by the program; a heap that
 * grows round after round, even after a forced GC, is a leak, and the snapshot diff names
 * what is retained.
 *
 * Usage (from the repository root):
 * `deno run --allow-all tests/soak/_memory_probe.ts [--rounds N] [--clients N] [--snapshots] [--no-gc]`
 * (`--no-gc`: only read memory after each round, as a test without a forced GC sees it;
 * `--peak`: heap kinds per open idle client, from snapshots idle and with every client open).
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  closeQuietly,
  connect,
  delay,
  freePort,
  isClosedWithin,
  readExactly,
} from "../_helpers.ts";
import {
  BackendProcess,
  configYaml,
  GREETING_BYTES,
  report,
  ServeProcess,
  waitUntil,
} from "../reliability/_harness.ts";

/** A minimal Chrome DevTools protocol client over the inspector WebSocket. */
class Inspector {
  readonly #ws: WebSocket;
  #nextId = 1;
  readonly #pending = new Map<number, (message: Record<string, unknown>) => void>();
  #chunks: string[] = [];

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as Record<string, unknown>;
      if (typeof message.id === "number") {
        this.#pending.get(message.id)?.(message);
        this.#pending.delete(message.id);
      } else if (message.method === "HeapProfiler.addHeapSnapshotChunk") {
        this.#chunks.push((message.params as { chunk: string }).chunk);
      }
    };
  }

  static async connect(port: number): Promise<Inspector> {
    const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
      webSocketDebuggerUrl: string;
    }[];
    const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    return new Inspector(ws);
  }

  async call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#nextId++;
    const answer = new Promise<Record<string, unknown>>((resolve) =>
      this.#pending.set(id, resolve)
    );
    this.#ws.send(JSON.stringify({ id, method, params }));
    const message = await answer;
    if (message.error) throw new Error(`${method} failed: ${JSON.stringify(message.error)}`);
    return message.result;
  }

  /** Evaluates `expression` in the inspected isolate and returns its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const result = await this.call("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    }) as { result: { value: T } };
    return result.result.value;
  }

  async heapSnapshot(): Promise<string> {
    this.#chunks = [];
    await this.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    const text = this.#chunks.join("");
    this.#chunks = [];
    return text;
  }

  close(): void {
    this.#ws.close();
  }
}

/** `Deno.memoryUsage()` of the serve isolate, in KiB. */
interface Memory {
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
}

async function memory(inspector: Inspector): Promise<Memory> {
  const m = await inspector.evaluate<Record<keyof Memory, number>>("Deno.memoryUsage()");
  const kib = (n: number) => Math.round(n / 1024);
  return {
    rss: kib(m.rss),
    heapTotal: kib(m.heapTotal),
    heapUsed: kib(m.heapUsed),
    external: kib(m.external),
  };
}

/** Self size and count per `type:name` of a V8 heap snapshot. */
function summarize(snapshotText: string): Summary {
  const snapshot = JSON.parse(snapshotText) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const byKind = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snapshot.nodes.length; i += width) {
    const type = types[snapshot.nodes[i + typeAt]!]!;
    const rawName = snapshot.strings[snapshot.nodes[i + nameAt]!] ?? "";
    const name = type === "string" || type === "concatenated string" || type === "sliced string"
      ? "(string)"
      : rawName.slice(0, 60);
    const key = `${type}:${name}`;
    const entry = byKind.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += snapshot.nodes[i + sizeAt]!;
    byKind.set(key, entry);
  }
  return byKind;
}

type Summary = Map<string, { count: number; bytes: number }>;

/** The 15 kinds whose self size changed most from `then` to `now`. */
function growth(then: Summary, now: Summary): { kind: string; count: number; bytes: number }[] {
  return [...now.entries()]
    .map(([kind, n]) => {
      const t = then.get(kind) ?? { count: 0, bytes: 0 };
      return { kind, count: n.count - t.count, bytes: n.bytes - t.bytes };
    })
    .filter((g) => g.count !== 0 || g.bytes !== 0)
    .sort((a, b) => Math.abs(b.bytes) - Math.abs(a.bytes))
    .slice(0, 15);
}

/** Opens `clients` idle connections, waits until `serve` reclaims them all, and for the descriptors. */
async function idleRound(
  serve: ServeProcess,
  port: number,
  clients: number,
  idleTimeoutMs: number,
  baselineFds: number,
  onOpen: () => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  const conns: Deno.TcpConn[] = [];
  try {
    for (let batch = 0; batch < clients; batch += 100) {
      await Promise.all(Array.from({ length: Math.min(100, clients - batch) }, async () => {
        const conn = await connect(port);
        conns.push(conn);
        await readExactly(conn, GREETING_BYTES);
      }));
    }
    await onOpen();
    await Promise.all(conns.map((c) => isClosedWithin(c, idleTimeoutMs + 10_000)));
    await waitUntil(() => serve.fdCount() <= baselineFds + 5, "descriptors back", 10_000);
  } finally {
    for (const conn of conns) closeQuietly(conn);
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "8" },
      clients: { type: "string", default: "2000" },
      snapshots: { type: "boolean", default: false },
      "no-gc": { type: "boolean", default: false },
      peak: { type: "boolean", default: false },
    },
  });
  const rounds = Number(values.rounds);
  const clients = Number(values.clients);
  // Long enough for a heap snapshot of the peak (`--peak`) while every client is still open.
  const idleTimeoutMs = values.peak ? 20_000 : 2_000;
  await using backend = await BackendProcess.start("idle");
  const adminPort = freePort();
  const port = freePort();
  const inspectPort = freePort();
  await using serve = await ServeProcess.start(
    configYaml(adminPort, [{
      name: "idle",
      port,
      backends: [backend.key],
      extra: { idleTimeout: `${idleTimeoutMs}ms`, maxConnections: 0 },
    }]),
    adminPort,
    { runtimeArgs: [`--inspect=127.0.0.1:${inspectPort}`] },
  );
  const inspector = await Inspector.connect(inspectPort);
  try {
    await inspector.call("HeapProfiler.collectGarbage");
    const baselineFds = serve.fdCount();
    report("memory probe baseline", {
      fds: baselineFds,
      procRssKiB: serve.rssKiB(),
      afterGcKiB: await memory(inspector),
    });
    let first: Summary | undefined;
    const idle = values.peak ? summarize(await inspector.heapSnapshot()) : undefined;
    for (let round = 1; round <= rounds; round++) {
      await idleRound(serve, port, clients, idleTimeoutMs, baselineFds, async () => {
        if (round !== 1 || !idle) return;
        report("heap per open idle client, by kind", {
          perClient: growth(idle, summarize(await inspector.heapSnapshot()))
            .map((g) => ({ ...g, count: g.count / clients, bytes: Math.round(g.bytes / clients) })),
        });
      });
      const beforeGc = await memory(inspector);
      if (values["no-gc"]) {
        report(`memory probe round ${round}`, {
          clients,
          fds: serve.fdCount(),
          procRssKiB: serve.rssKiB(),
          withoutGcKiB: beforeGc,
        });
        continue;
      }
      await inspector.call("HeapProfiler.collectGarbage");
      await delay(200);
      const afterGc = await memory(inspector);
      report(`memory probe round ${round}`, {
        clients,
        fds: serve.fdCount(),
        procRssKiB: serve.rssKiB(),
        beforeGcKiB: beforeGc,
        afterGcKiB: afterGc,
      });
      if (values.snapshots && (round === 1 || round === rounds)) {
        const summary = summarize(await inspector.heapSnapshot());
        if (round === 1) {
          first = summary;
        } else if (first) {
          report(`heap growth from round 1 to round ${rounds} (after GC)`, {
            growth: growth(first, summary),
          });
        }
      }
    }
  } finally {
    inspector.close();
  }
}
