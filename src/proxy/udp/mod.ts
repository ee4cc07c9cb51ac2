/**
 * UDP listeners: sessions keyed by client address and port, a backend socket per session,
 * idle expiry, session limits, drops counted by cause. Takes a {@linkcode Picker} as the TCP
 * listener does; knows nothing of Kubernetes.
 *
 * @module
 */
export * from "./udp_listener.ts";
export * from "./stats.ts";
