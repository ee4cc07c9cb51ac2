/**
 * What to change when binding a port below 1024 is refused (`EACCES`): the process lacks
 * `CAP_NET_BIND_SERVICE` and the network namespace keeps the port privileged.
 *
 * @module
 */

/** Ports below this are privileged unless `net.ipv4.ip_unprivileged_port_start` is lower. */
export const FIRST_UNPRIVILEGED_PORT = 1024;

/**
 * A hint to append to a bind error, or `""` when `error` is not a refused privileged port.
 * @param port the port that was being bound
 */
export function privilegedPortHint(error: unknown, port: number): string {
  const isDenied = error instanceof Deno.errors.PermissionDenied ||
    /\(os error 13\)/.test(String(error));
  if (!isDenied || port <= 0 || port >= FIRST_UNPRIVILEGED_PORT) return "";
  return `: port ${port} is privileged and this process lacks CAP_NET_BIND_SERVICE: ` +
    `in a container run it with --sysctl net.ipv4.ip_unprivileged_port_start=0, ` +
    `under systemd set AmbientCapabilities=CAP_NET_BIND_SERVICE (docs/deploy.md)`;
}
