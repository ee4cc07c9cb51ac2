/**
 * How a `tls` listener's routes (`ListenerSpec.tls`, SNI passthrough routing) become pools:
 * resolve/ sees each route as an ordinary {@linkcode PoolSpec} named `listener/route`, so
 * Kubernetes binding, `discover`, health checks and metrics treat a route like any pool.
 *
 * @module
 */
import type { ListenerSpec } from "./listener_spec.ts";
import type { PoolSpec } from "./pool_spec.ts";

/** What {@linkcode poolSpecsOf} needs of a listener: its pool, protocol (absent: `tcp`), routes. */
export type RoutedPoolSpec = PoolSpec & Partial<Pick<ListenerSpec, "protocol" | "tls">>;

/** The name of a route's pool: `listener/route`, as Services name it in their annotation. */
export function routePoolName(listener: string, route: string): string {
  return `${listener}/${route}`;
}

/** The names of a listener's pools: its own name, or `listener/route` for each `tls` route. */
export function poolNamesOf(
  listener: Pick<RoutedPoolSpec, "name" | "protocol" | "tls">,
): string[] {
  if (listener.protocol !== "tls" || listener.tls === undefined) return [listener.name];
  return listener.tls.routes.map((route) => routePoolName(listener.name, route.name));
}

/** The listener a pool belongs to: the pool's own name, or the part before `/` of a route's. */
export function listenerOfPool(pool: string): string {
  const slash = pool.indexOf("/");
  return slash < 0 ? pool : pool.slice(0, slash);
}

/**
 * The pools of a listener: its own for `tcp` (and `udp`), one per route for `tls`. A route
 * pool takes the listener's membership settings with the route's name, static backends and
 * `backendPortName` (the listener's when the route sets none).
 */
export function poolSpecsOf<L extends RoutedPoolSpec>(listener: L): PoolSpec[] {
  if (listener.protocol !== "tls" || listener.tls === undefined) return [listener];
  return listener.tls.routes.map((route): PoolSpec => {
    const portName = route.backendPortName ?? listener.backendPortName;
    const { backendPortName: _, protocol: _p, tls: _t, ...rest } = listener;
    // TLS checks of the route's backends name the route's first exact host.
    const exact = route.hosts.find((h) => !h.startsWith("*"));
    const healthCheck = rest.healthCheck === undefined || exact === undefined
      ? rest.healthCheck
      : { ...rest.healthCheck, serverName: normalizeServerName(exact.trim()) };
    return {
      ...rest,
      name: routePoolName(listener.name, route.name),
      ...(portName !== undefined && { backendPortName: portName }),
      backends: route.backends,
      ...(healthCheck !== undefined && { healthCheck }),
    };
  });
}

/** Lower-cases a server name and drops one trailing dot: the form routes compare. */
export function normalizeServerName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}
