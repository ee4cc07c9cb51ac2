/**
 * The literal-spelling rule of docs/architecture.md, checked: values a machine reads
 * (config YAML, metric labels, JSON fields) are snake_case; reasons written for people
 * (`discover --explain`, logs, status) are kebab-case; words another spec fixes keep its
 * spelling and are not listed here.
 */
import assert from "node:assert/strict";
import {
  BACKEND_HEALTHS,
  type BackendHealth,
  BALANCER_KINDS,
  type BalancerKind,
  LISTENER_PROTOCOLS,
  type ListenerProtocol,
  type NoBackendReason,
  REFUSAL_CAUSES,
  type RefusalCause,
} from "../src/core/types.ts";
import {
  DISCOVERY_STATES,
  type DiscoverySource,
  type DiscoveryState,
} from "../src/core/discovery_state.ts";
import type { OnRemoval, WhenAllUnhealthy } from "../src/core/listener_spec.ts";
import type { BackendMode } from "../src/core/pool_spec.ts";
import type { ExclusionReason } from "../src/core/plan.ts";
import {
  type ForwardOutcome,
  type ProxyParseErrorReason,
  UDP_DROP_CAUSES,
  type UdpDropCause,
  type UdpSessionOutcome,
} from "../src/proxy/mod.ts";
import type { ApiFailure } from "../src/discovery/mod.ts";
import type { TransitionCause } from "../src/health/mod.ts";
import type { LogLevel } from "../src/log/mod.ts";
import type { AdminReloadOutcome } from "../src/admin/mod.ts";

/** Members of `T` with a character the spelling forbids; `never` when all comply. */
type WithDash<T extends string> = T extends `${string}-${string}` ? T : never;
type WithUnderscore<T extends string> = T extends `${string}_${string}` ? T : never;
type WithUpper<T extends string> = T extends Lowercase<T> ? never : T;

/** Machine-read values: config YAML, metric labels, JSON output. */
type MachineValue =
  | BalancerKind
  | BackendHealth
  | RefusalCause
  | NoBackendReason
  | ForwardOutcome
  | DiscoveryState
  | DiscoverySource
  | OnRemoval
  | WhenAllUnhealthy
  | BackendMode
  | LogLevel
  | TransitionCause
  | AdminReloadOutcome
  | ListenerProtocol
  | UdpDropCause
  | UdpSessionOutcome;

/** Reasons written for people. */
type HumanReason = ExclusionReason | ApiFailure | ProxyParseErrorReason;

// Compile-time: `deno check` fails here when a member breaks the rule.
const machineIsSnake: [WithDash<MachineValue> | WithUpper<MachineValue>] extends [never] ? true
  : false = true;
const reasonsAreKebab: [WithUnderscore<HumanReason> | WithUpper<HumanReason>] extends [never] ? true
  : false = true;

Deno.test("machine-read values are snake_case, human reasons kebab-case (types)", () => {
  assert.equal(machineIsSnake, true);
  assert.equal(reasonsAreKebab, true);
});

Deno.test("every listed machine-read value is snake_case", () => {
  const values: readonly string[] = [
    ...BALANCER_KINDS,
    ...BACKEND_HEALTHS,
    ...REFUSAL_CAUSES,
    ...DISCOVERY_STATES,
    ...LISTENER_PROTOCOLS,
    ...UDP_DROP_CAUSES,
  ];
  assert.ok(values.length > 10);
  for (const value of values) assert.match(value, /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/, value);
});
