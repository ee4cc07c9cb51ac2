/**
 * The data path: listeners accept, forward picks → dials → pipes. Knows nothing of
 * Kubernetes; takes a {@linkcode Picker}.
 *
 * @module
 */
export * from "./listener.ts";
export type { ForwardFailure, ForwardOutcome, ForwardStats } from "./forward.ts";
export type { Backend, ClientInfo, Lease, NoBackendReason, Picker } from "../core/types.ts";
