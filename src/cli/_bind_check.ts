/**
 * Whether `serve` may bind what a config asks for, checked before anything starts: each
 * problem names the listener (or `admin`) and its address. Shared by `serve` and
 * `serve --dry-run`, so both say the same thing.
 *
 * @module
 */
import type { Config } from "../config/mod.ts";
import { bindHostname } from "../core/address.ts";
import { errorMessage } from "../core/error_message.ts";
import { privilegedPortHint } from "../core/privileged_port.ts";
import { adminOf } from "../control/mod.ts";

/** Options of {@linkcode bindProblems}. */
export interface BindCheckOptions {
  /**
   * `serve --handover`: a listener address another process serves is expected; it must
   * accept a second socket with `SO_REUSEPORT` (as `serve` binds with it). Without it, such
   * an address is a problem: with `SO_REUSEPORT` a second process would otherwise bind it
   * silently and take a share of the traffic.
   */
  readonly isHandover: boolean;
  /** Whether this process can bind with `SO_REUSEPORT` (Linux, `--unstable-net`). */
  readonly canReusePort: boolean;
}

/**
 * Tries every listener address (then the admin address) with a plain bind, which fails with
 * `AddrInUse` when any socket holds it, `SO_REUSEPORT` (TCP) or `SO_REUSEADDR` (UDP, as
 * `serve` binds it for a handover) or not; closes each at once.
 *
 * A held address is a problem unless this is a handover. A handover's address is not tried
 * again with `SO_REUSEPORT`/`SO_REUSEADDR`: such a probe would take traffic from the process
 * it hands over from (TCP: its hash share of new connections, reset when the probe closes;
 * UDP: every datagram while it is bound). Whether that process shares the address shows at
 * the real bind, whose failure names the listener and says why.
 *
 * @returns one line per address that cannot be bound, `NAME: cannot bind HOST:PORT: why`;
 *   empty when everything can
 */
export function bindProblems(config: Config, options: BindCheckOptions): string[] {
  const problems: string[] = [];
  for (const listener of config.configurations) {
    const hostname = bindHostname(listener.host);
    const problem = listener.protocol === "udp"
      ? tryBindUdp(hostname, listener.port, options)
      : tryBind(hostname, listener.port, options);
    if (problem !== undefined) {
      problems.push(`${listener.name}: cannot bind ${listener.listenerAddress}: ${problem}`);
    }
  }
  const admin = adminOf(config.settings.adminAddress);
  if (admin !== undefined) {
    // The admin server never shares its port: a handover gives the new process its own.
    const problem = tryBind(admin.hostname, admin.port, { ...options, isHandover: false });
    if (problem !== undefined) {
      problems.push(
        `admin: cannot bind ${admin.address}: ${problem}${
          options.isHandover ? " (a handover needs its own --admin-address)" : ""
        }`,
      );
    }
  }
  return problems;
}

function tryBind(hostname: string, port: number, options: BindCheckOptions): string | undefined {
  try {
    Deno.listen({ hostname, port }).close();
    return undefined;
  } catch (error) {
    if (!(error instanceof Deno.errors.AddrInUse)) {
      return errorMessage(error) + privilegedPortHint(error, port);
    }
    const inUse = errorMessage(error);
    if (!options.isHandover) {
      return `${inUse}: another process serves it (to take over from a running serve, ` +
        "start the new one with serve --handover)";
    }
    if (!options.canReusePort) {
      return `${inUse}: a handover needs SO_REUSEPORT: run on Linux with --unstable-net`;
    }
  }
  return undefined;
}

/**
 * The UDP counterpart of {@linkcode tryBind}: `serve` binds UDP listeners with `SO_REUSEADDR`
 * for a handover, and on Linux the socket bound last takes the datagrams, so a second process
 * would silently take all of them.
 */
function tryBindUdp(
  hostname: string,
  port: number,
  options: BindCheckOptions,
): string | undefined {
  if (typeof (Deno as { listenDatagram?: unknown }).listenDatagram !== "function") {
    return "UDP listeners need Deno's --unstable-net flag";
  }
  try {
    Deno.listenDatagram({ hostname, port, transport: "udp" }).close();
    return undefined;
  } catch (error) {
    if (!(error instanceof Deno.errors.AddrInUse)) {
      return errorMessage(error) + privilegedPortHint(error, port);
    }
    if (!options.isHandover) {
      return `${errorMessage(error)}: another process serves it (to take over from a running ` +
        "serve, start the new one with serve --handover)";
    }
  }
  return undefined;
}
