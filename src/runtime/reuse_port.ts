/**
 * Whether listeners can bind with `SO_REUSEPORT` here.
 *
 * @module
 */

/**
 * True on Linux when the unstable net APIs are on (`--unstable-net`): then
 * `Deno.listen({ reusePort: true })` works, and a second process can bind the same
 * addresses for a handover. Without the flag Deno ends the process on that option, so ask
 * first.
 */
export function reusePortSupported(): boolean {
  // `Deno.listenDatagram` exists exactly when the unstable net APIs are enabled.
  return Deno.build.os === "linux" &&
    typeof (Deno as { listenDatagram?: unknown }).listenDatagram === "function";
}
