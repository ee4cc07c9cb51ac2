/**
 * The `tls` settings of a listener (SNI passthrough routing) and how its routes become
 * pools. Config's `ListenerConfig` and the data plane's listener both carry a
 * {@linkcode TlsSpec}; resolve/ sees each route as an ordinary {@linkcode PoolSpec} named
 * `listener/route`, so Kubernetes binding, `discover`, health checks and metrics treat a
 * route like any pool.
 *
 * @module
 */
import type { PoolSpec, StaticBackendSpec } from "./pool_spec.ts";
import type { ListenerProtocol } from "./types.ts";

/** One route of a `tls` listener, as written under `tls.routes[]`. */
export interface TlsRouteSpec {
  /** Route name, unique in its listener; its pool is `listener/route`. */
  readonly name: string;
  /** Host patterns: `a.example.com`, `*.example.com` (one label), `**.example.com` (any depth). */
  readonly hosts: readonly string[];
  /** Kubernetes Service port name of the route's backends; the listener's when absent. */
  readonly backendPortName?: string;
  /** Static backends of the route; `[]` when none. */
  readonly backends: readonly StaticBackendSpec[];
}

/** The `tls:` block of a listener with `protocol: tls`. */
export interface TlsSpec {
  /** Routes, in file order; at least one. */
  readonly routes: readonly TlsRouteSpec[];
  /** Route for no server name, an unmatched one, or non-TLS bytes; refused when absent. */
  readonly defaultRoute?: string;
  /** Time from accept (or the PROXY header) to a complete ClientHello. @default {5000} */
  readonly peekTimeoutMs: number;
  /** Most bytes read before the ClientHello is complete, record headers included. @default {16384} */
  readonly maxClientHelloBytes: number;
}

/** What {@linkcode poolSpecsOf} needs of a listener. */
export interface RoutedPoolSpec extends PoolSpec {
  /** The listener's protocol. @default {"tcp"} */
  readonly protocol?: ListenerProtocol;
  /** With `protocol: tls`, the routes. */
  readonly tls?: TlsSpec;
}

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
