/**
 * Host:port parsing and formatting, IPv6-aware.
 *
 * @module
 */

/** A parsed `host:port`. `host` is empty for listener addresses like `:80` (all interfaces). */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses `host:port`, `[v6]:port` or `:port`.
 * @throws {SyntaxError} when the text has no port or the host is malformed
 * @throws {RangeError} when the port is outside 1-65535
 */
export function parseHostPort(text: string): HostPort {
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const end = text.indexOf("]");
    if (end < 0 || text[end + 1] !== ":") {
      throw new SyntaxError(`Cannot parse address "${text}": expected "[IPv6]:port"`);
    }
    host = text.slice(1, end);
    portText = text.slice(end + 2);
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) {
      throw new SyntaxError(`Cannot parse address "${text}": expected "host:port" or ":port"`);
    }
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) {
      throw new SyntaxError(
        `Cannot parse address "${text}": IPv6 hosts must be in brackets, e.g. "[${host}]:${portText}"`,
      );
    }
  }
  if (!/^\d+$/.test(portText)) {
    throw new SyntaxError(`Cannot parse address "${text}": port "${portText}" is not a number`);
  }
  const port = Number(portText);
  if (port < 1 || port > 65535) {
    throw new RangeError(`Cannot use address "${text}": port ${port} is out of range 1-65535`);
  }
  return { host, port };
}

/** Formats a host and port as a backend key: `10.0.0.1:80`, `[fd00::1]:80`. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** What a listener binds when its address has no host (`:80`): every IPv4 interface. */
export const ANY_HOST = "0.0.0.0";

/**
 * The one bind-host rule: the hostname to bind for `host` as parsed by
 * {@linkcode parseHostPort}; `""` becomes `missing`.
 * @param missing what an empty host means: {@linkcode ANY_HOST} for listeners; the admin
 *   server passes loopback, so metrics are not exposed by accident
 */
export function bindHostname(host: string, missing: string = ANY_HOST): string {
  return host === "" ? missing : host;
}
