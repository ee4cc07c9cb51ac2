/**
 * A quick look at the Kubernetes API server before a one-shot command lists anything: can a
 * TCP connection be opened to it at all? A command that prints once and exits should say
 * "connection refused" or "the name does not resolve" in a moment, not retry for seconds.
 *
 * @module
 */
import { deadline, isTimeout } from "../core/deadline.ts";
import { errorMessage } from "../core/error_message.ts";

/** How long a one-shot command waits for the API server to accept a TCP connection. */
export const API_CONNECT_TIMEOUT_MS = 2_000;

/**
 * Opens (and closes) one TCP connection to the host and port of `server`.
 *
 * Resolves `undefined` for a URL it cannot parse (the client reports that itself). Callers
 * whose requests go through an HTTP(S) proxy should not ask: the server may well be
 * unreachable directly.
 *
 * @param server the API server URL, e.g. `https://10.0.0.1:6443`
 * @returns `undefined` when it accepted a connection, else why not, in a few words
 *   (`connection refused`, `the name "x" does not resolve`, `no answer within 2 s`)
 * @throws the signal's reason when `signal` aborts first
 */
export async function apiUnreachable(
  server: string,
  signal: AbortSignal,
  timeoutMs: number = API_CONNECT_TIMEOUT_MS,
): Promise<string | undefined> {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return undefined;
  }
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port !== "" ? Number(url.port) : url.protocol === "http:" ? 80 : 443;
  const connecting = Deno.connect({ hostname, port });
  try {
    const conn = await deadline(connecting, timeoutMs, signal);
    conn.close();
    return undefined;
  } catch (error) {
    // Close a connection that arrives after the deadline or the abort.
    connecting.then((conn) => conn.close(), () => {});
    if (signal.aborted && error === signal.reason) throw error;
    if (isTimeout(error)) return `no answer within ${timeoutMs / 1000} s`;
    if (error instanceof Deno.errors.ConnectionRefused) return "connection refused";
    const message = errorMessage(error);
    if (/failed to lookup address/i.test(message)) {
      return `the name ${JSON.stringify(hostname)} does not resolve`;
    }
    return message;
  }
}
