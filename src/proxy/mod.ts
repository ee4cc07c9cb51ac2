/**
 * The data path: listeners accept, forward picks → dials → pipes. Knows nothing of
 * Kubernetes; takes a {@linkcode Picker}.
 *
 * @module
 */
export * from "./listener.ts";
export type { ConnectionRecord, ForwardFailure, ForwardOutcome, ForwardStats } from "./forward.ts";
export type {
  Backend,
  BackendCounters,
  ClientInfo,
  Lease,
  NoBackendReason,
  Picker,
  RefusalCause,
} from "../core/types.ts";
export { REFUSAL_CAUSES } from "../core/types.ts";
