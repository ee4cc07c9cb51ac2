/**
 * The TLS variant of the TCP probe, for pools that pass TLS through (the backend terminates
 * it): connect, complete a TLS handshake, optionally send and expect inside TLS, then close
 * with a `close_notify` alert so the backend sees an orderly shutdown instead of logging a
 * truncated connection or a handshake failure every interval.
 *
 * The certificate is not verified. The check asks "does the backend speak TLS and finish a
 * handshake", not "is it trusted": backends behind a passthrough listener usually present a
 * certificate for the public name, or a private CA's, that this process has no reason to
 * trust. `Deno.connectTls`/`Deno.startTls` always verify (turning that off needs the
 * process-wide `--unsafely-ignore-certificate-errors` flag), and a verification failure makes
 * the client abort the handshake with an alert (`certificate unknown`), which the backend
 * logs as an error. `node:tls` with `rejectUnauthorized: false` completes the handshake on
 * stable Deno, so that is what this probe uses.
 *
 * Like {@linkcode probeTcp}, the probe owns its socket and timer until it settles, never
 * rejects, and marks failures of this process as `isLocalError`.
 *
 * @module
 */
import { isIP } from "node:net";
import tls from "node:tls";
import {
  isLocalNetworkError,
  LOCAL_ERROR_CODES,
  MAX_PROBE_RESPONSE_BYTES,
  type ProbeResult,
  type ProbeTarget,
  type TcpProbeOptions,
} from "./probe.ts";

/** Options of {@linkcode probeTls}: those of the TCP probe, run inside TLS. */
export interface TlsProbeOptions extends TcpProbeOptions {
  /**
   * Server name sent as SNI. Defaults to `target.host` when it is a name; IP addresses are
   * not sent (RFC 6066, section 3, forbids literal addresses in SNI).
   */
  readonly serverName?: string;
  /**
   * Judges the first line of the reply instead of `expect` (HTTPS checks): `undefined` passes,
   * a string is the failure. Only that line is read, at most `MAX_PROBE_RESPONSE_BYTES`.
   */
  readonly firstLine?: (line: string) => string | undefined;
}

/** Longest wait for the backend's side of the shutdown after our `close_notify`. */
const SHUTDOWN_GRACE_MS = 200;

/**
 * Connects to `target`, completes a TLS handshake without verifying the certificate,
 * optionally sends `options.send` and waits for `options.expect`, then sends `close_notify`.
 *
 * @example
 * ```ts
 * const result = await probeTls({ host: "10.0.0.7", port: 443 }, { timeoutMs: 1000 });
 * if (!result.ok) console.log(result.error); // e.g. "TLS handshake failed: wrong version number"
 * ```
 *
 * @returns the verdict; never rejects
 */
export function probeTls(target: ProbeTarget, options: TlsProbeOptions): Promise<ProbeResult> {
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 100) / 100;
  const { timeoutMs, signal, send, firstLine } = options;
  const expect = firstLine === undefined ? options.expect : "\n";
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    return Promise.resolve({
      ok: false,
      latencyMs: 0,
      error: `invalid timeout: 'timeoutMs' must be a positive number, got ${timeoutMs}`,
    });
  }
  if (signal?.aborted) return Promise.resolve({ ok: false, latencyMs: 0, error: "aborted" });
  const serverName = options.serverName ?? (isIP(target.host) === 0 ? target.host : undefined);

  return new Promise<ProbeResult>((resolve) => {
    let isSettled = false;
    let isSecure = false;
    let received = "";
    let receivedBytes = 0;
    const decoder = new TextDecoder();
    const socket = tls.connect({
      host: target.host,
      port: target.port,
      rejectUnauthorized: false,
      ...(serverName !== undefined && { servername: serverName }),
    });
    const finish = (error: string | undefined, isLocalError = false) => {
      if (isSettled) return;
      isSettled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (error === undefined) {
        // close_notify, then FIN; wait briefly for the backend's half so neither side resets.
        socket.end();
        const grace = setTimeout(() => socket.destroy(), SHUTDOWN_GRACE_MS);
        socket.once("close", () => clearTimeout(grace));
        resolve({ ok: true, latencyMs: elapsed() });
        return;
      }
      if (isSecure) socket.end();
      socket.destroy();
      resolve(
        isLocalError
          ? { ok: false, latencyMs: elapsed(), error: `local error: ${error}`, isLocalError }
          : { ok: false, latencyMs: elapsed(), error },
      );
    };
    const timer = setTimeout(() => finish(`timed out after ${timeoutMs}ms`), timeoutMs);
    const onAbort = () => finish("aborted");
    signal?.addEventListener("abort", onAbort, { once: true });

    socket.on("secureConnect", () => {
      isSecure = true;
      if (send) socket.write(send);
      if (!expect) finish(undefined);
    });
    socket.on("data", (chunk: Uint8Array) => {
      if (!expect || isSettled) return;
      receivedBytes += chunk.length;
      received += decoder.decode(chunk, { stream: true });
      if (firstLine !== undefined && received.includes("\n")) {
        return finish(firstLine(received.slice(0, received.indexOf("\n")).replace(/\r$/, "")));
      }
      if (received.includes(expect)) return finish(undefined);
      if (receivedBytes >= MAX_PROBE_RESPONSE_BYTES) {
        return finish(
          `expected ${
            JSON.stringify(expect)
          } not found in the first ${MAX_PROBE_RESPONSE_BYTES} bytes`,
        );
      }
      if (firstLine === undefined) {
        received = received.slice(Math.max(0, received.length - expect.length + 1));
      }
    });
    socket.on("end", () => {
      if (!isSecure) return finish("connection closed during the TLS handshake");
      finish(expect ? `expected ${JSON.stringify(expect)} not found` : undefined);
    });
    socket.on("error", (error: Error) => {
      finish(
        isSecure ? describe(error) : `TLS handshake failed: ${describe(error)}`,
        isLocalCode(error),
      );
    });
  });
}

function isLocalCode(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return (typeof code === "string" && LOCAL_ERROR_CODES.has(code)) || isLocalNetworkError(error);
}

const CODE_TEXT: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  EHOSTUNREACH: "no route to host",
  ENETUNREACH: "network unreachable",
  ETIMEDOUT: "timed out",
};

/** `connect ECONNREFUSED 127.0.0.1:1` → `connection refused`; others lower-cased. */
function describe(error: Error): string {
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && CODE_TEXT[code] !== undefined) return CODE_TEXT[code]!;
  const text = error.message.replace(/\s*\(os error \d+\)$/, "").trim();
  if (text === "") return error.name;
  return text[0]!.toLowerCase() + text.slice(1);
}
