/**
 * The error a listener that cannot bind at start raises: which listener, which address, and
 * why when that can be told.
 *
 * @module
 */
import { formatHostPort } from "../core/address.ts";
import { errorMessage } from "../core/error_message.ts";
import { privilegedPortHint } from "../core/privileged_port.ts";
import type { DataPlaneListener } from "./data_plane.ts";

/**
 * `Cannot start listeners: NAME: cannot bind HOST:PORT: WHY`, with `error` as its cause. WHY
 * is `error`'s message plus a hint for a privileged port, or, when `isShared` (this process
 * binds with `SO_REUSEPORT`, `SO_REUSEADDR` for UDP, as for a handover), for an address held
 * by a process that does not share it. A worker's failure arrives as its message only:
 * Deno's text with the OS error number, which is what is matched then.
 */
export function bindFailure(
  error: unknown,
  listener: Pick<DataPlaneListener, "name" | "host" | "port" | "protocol">,
  isShared: boolean,
): Error {
  let hint = privilegedPortHint(error, listener.port);
  const isInUse = error instanceof Deno.errors.AddrInUse ||
    /\(os error 98\)/.test(String(error));
  if (hint === "" && isInUse && isShared) {
    const option = listener.protocol === "udp" ? "SO_REUSEADDR" : "SO_REUSEPORT";
    hint = `: the process that serves it does not share it (${option}), so it cannot be ` +
      "handed over";
  }
  const address = formatHostPort(listener.host, listener.port);
  return new Error(
    `Cannot start listeners: ${listener.name}: cannot bind ${address}: ${
      errorMessage(error)
    }${hint}`,
    { cause: error },
  );
}
