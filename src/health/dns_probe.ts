/**
 * A one-shot DNS probe over UDP: send one query (RFC 1035 section 4.1), wait for the answer
 * with its ID. For UDP pools of DNS servers, where a TCP connect says nothing about the UDP
 * side and Deno reports no ICMP port-unreachable.
 *
 * @module
 */
import { errorMessage } from "../core/error_message.ts";
import { isLocalNetworkError, type ProbeResult, type ProbeTarget } from "./probe.ts";

/** Options of {@linkcode probeDns}. */
export interface DnsProbeOptions {
  /** Name to ask for, e.g. `"."` or `"example.com"`; a trailing dot is optional. */
  readonly name: string;
  /** Budget of the probe. */
  readonly timeoutMs: number;
  /** Aborting ends the probe at once (result `aborted`). */
  readonly signal?: AbortSignal;
  /** Query ID; random when absent (tests fix it). */
  readonly id?: number;
}

/** Query type A (RFC 1035 section 3.2.2). */
const TYPE_A = 1;
/** Class IN. */
const CLASS_IN = 1;
/** RCODEs that mean "the server works": NOERROR, NXDOMAIN (RFC 1035 section 4.1.1). */
const HEALTHY_RCODES = new Set([0, 3]);
const RCODE_NAMES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];

/**
 * Encodes a standard query with recursion desired for `name`, type A, class IN.
 * @throws {RangeError} when a label is empty or longer than 63 bytes, or the name longer than
 *   255 bytes
 */
export function encodeDnsQuery(id: number, name: string): Uint8Array {
  const labels = name === "." || name === ""
    ? []
    : name.replace(/\.$/, "").split(".").map((l) => new TextEncoder().encode(l));
  for (const label of labels) {
    if (label.length === 0 || label.length > 63) {
      throw new RangeError(
        `Cannot encode DNS query for ${JSON.stringify(name)}: labels must be 1-63 bytes long`,
      );
    }
  }
  const nameLength = labels.reduce((n, l) => n + 1 + l.length, 1);
  if (nameLength > 255) {
    throw new RangeError(
      `Cannot encode DNS query for ${JSON.stringify(name)}: names must be at most 255 bytes long`,
    );
  }
  const out = new Uint8Array(12 + nameLength + 4);
  const view = new DataView(out.buffer);
  view.setUint16(0, id);
  view.setUint16(2, 0x0100); // RD
  view.setUint16(4, 1); // QDCOUNT
  let at = 12;
  for (const label of labels) {
    out[at++] = label.length;
    out.set(label, at);
    at += label.length;
  }
  out[at++] = 0;
  view.setUint16(at, TYPE_A);
  view.setUint16(at + 2, CLASS_IN);
  return out;
}

/**
 * What an answer to query `id` says: `undefined` when `data` is not a response to it (another
 * ID, not a response, too short), else its RCODE.
 */
export function dnsResponseCode(data: Uint8Array, id: number): number | undefined {
  if (data.length < 12) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (view.getUint16(0) !== id) return undefined;
  const flags = view.getUint16(2);
  if ((flags & 0x8000) === 0) return undefined;
  return flags & 0x000f;
}

/**
 * Sends one DNS query to `target` over UDP and waits for the answer with the same ID from
 * that address. Healthy on NOERROR or NXDOMAIN; SERVFAIL, REFUSED and the rest fail, and so
 * does silence for `timeoutMs`. Owns its socket and timer; never rejects.
 */
export async function probeDns(
  target: ProbeTarget,
  options: DnsProbeOptions,
): Promise<ProbeResult> {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  if (options.signal?.aborted) return { ok: false, latencyMs: 0, error: "aborted" };
  const id = options.id ?? Math.floor(Math.random() * 0x10000);
  if (typeof (Deno as { listenDatagram?: unknown }).listenDatagram !== "function") {
    return { ok: false, latencyMs: 0, error: "DNS checks need Deno's --unstable-net flag" };
  }
  let socket: Deno.DatagramConn;
  try {
    socket = Deno.listenDatagram({
      hostname: target.host.includes(":") ? "::" : "0.0.0.0",
      port: 0,
      transport: "udp",
    });
  } catch (error) {
    return {
      ok: false,
      latencyMs: elapsed(),
      error: `cannot open a socket: ${errorMessage(error)}`,
      ...(isLocalNetworkError(error) && { isLocalError: true }),
    };
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  let settle!: (result: ProbeResult) => void;
  const verdict = new Promise<ProbeResult>((resolve) => settle = resolve);
  const onAbort = () => settle({ ok: false, latencyMs: elapsed(), error: "aborted" });
  options.signal?.addEventListener("abort", onAbort, { once: true });
  timer = setTimeout(
    () =>
      settle({ ok: false, latencyMs: elapsed(), error: `timed out after ${options.timeoutMs}ms` }),
    options.timeoutMs,
  );
  const receiving = (async () => {
    try {
      await socket.send(encodeDnsQuery(id, options.name), {
        transport: "udp",
        hostname: target.host,
        port: target.port,
      });
      const buffer = new Uint8Array(4096);
      while (true) {
        const [data, from] = await socket.receive(buffer);
        if ((from as Deno.NetAddr).port !== target.port) continue;
        const rcode = dnsResponseCode(data, id);
        if (rcode === undefined) continue;
        settle(
          HEALTHY_RCODES.has(rcode)
            ? { ok: true, latencyMs: elapsed() }
            : { ok: false, latencyMs: elapsed(), error: `rcode ${RCODE_NAMES[rcode] ?? rcode}` },
        );
        return;
      }
    } catch (error) {
      settle({
        ok: false,
        latencyMs: elapsed(),
        error: errorMessage(error),
        ...(isLocalNetworkError(error) && { isLocalError: true }),
      });
    }
  })();
  const result = await verdict;
  clearTimeout(timer);
  timer = undefined;
  options.signal?.removeEventListener("abort", onAbort);
  try {
    socket.close();
  } catch {
    // closed already
  }
  await receiving;
  return result;
}
