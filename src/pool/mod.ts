/**
 * Live pools: the one owner of backend membership, health, connection counts and drain.
 *
 * @module
 */
export * from "./pool.ts";
export type {
  Backend,
  Balancer,
  BalancerKind,
  Candidate,
  ClientInfo,
  Lease,
  NoBackendReason,
  Picker,
} from "../core/types.ts";
