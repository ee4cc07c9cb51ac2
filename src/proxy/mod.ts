/**
 * The data path: listeners accept, forward picks → dials → pipes. Knows nothing of
 * Kubernetes; takes a {@linkcode Picker}. PROXY protocol: headers are encoded and parsed in
 * `proxy_protocol.ts`, read from sockets in `read_proxy_header.ts`.
 *
 * @module
 */
export * from "./listener.ts";
export * from "./admission.ts";
export type {
  ConnectionRecord,
  ForwardFailure,
  ForwardOutcome,
  ForwardStats,
  InboundProxy,
} from "./forward.ts";
export * from "./proxy_protocol.ts";
export * from "./read_proxy_header.ts";
export * from "./udp/mod.ts";
export type {
  Backend,
  BackendCounters,
  ClientInfo,
  Lease,
  NoBackendReason,
  Picker,
  ProxyProtocolVersion,
  RefusalCause,
  RoutingRefusalCause,
} from "../core/types.ts";
export { REFUSAL_CAUSES } from "../core/types.ts";
export * from "./router.ts";
export {
  type ClientHelloInfo,
  type ClientHelloProgress,
  ClientHelloReader,
  DEFAULT_MAX_CLIENT_HELLO_BYTES,
  readClientHello,
} from "./tls/client_hello.ts";
export {
  formatHostPattern,
  type HostPattern,
  type HostPatternKind,
  normalizeServerName,
  parseHostPattern,
  RouteTable,
} from "./tls/route_table.ts";
export {
  DEFAULT_PEEK_TIMEOUT_MS,
  type TlsRoute,
  TlsRouter,
  type TlsRouterOptions,
} from "./tls/tls_router.ts";
