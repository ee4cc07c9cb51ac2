/**
 * The `tls:` block of a listener (`protocol: tls`) as a zod schema, built from the shared
 * building blocks of `schema.ts` (names, port names, static backends, durations, integer
 * ranges), so every field reads and reports like the rest of the file.
 *
 * @module
 */
import { z } from "zod";
import { errorMessage } from "../core/error_message.ts";
import type { StaticBackendSpec } from "../core/pool_spec.ts";
import { parseHostPattern } from "../proxy/mod.ts";
import * as D from "./defaults.ts";

/** What {@linkcode tlsSchema} takes from `schema.ts`, each already built. */
export interface TlsSchemaParts {
  /** A route name, with the listener name's rules. */
  readonly routeName: z.ZodType<string, string>;
  /** A Kubernetes Service port name. */
  readonly portName: z.ZodType<string, string>;
  /** A static backend as written (`"host:port"` or `{address, weight}`). */
  readonly staticBackend: z.ZodType<StaticBackendSpec, unknown>;
  /** `peekTimeout`: a duration with its default, in milliseconds. */
  readonly peekTimeout: z.ZodType<number, unknown>;
  /** `maxClientHello`: an integer in its range. */
  readonly maxClientHello: z.ZodType<number, number>;
}

/** The `tls:` block; checks across routes (names, hosts, `defaultRoute`): `_tls_checks.ts`. */
export function tlsSchema(parts: TlsSchemaParts) {
  const route = z
    .strictObject({
      name: parts.routeName.meta({
        description:
          'Route name, unique in the listener; its pool is "listener/route" (Services name it in nautiluslb.cloudresty.io/configurations).',
      }),
      hosts: z.array(hostPattern()).default([]).meta({
        description:
          'Server names this route takes: "a.example.com", "*.example.com" (exactly one label), "**.example.com" (any depth). Exact beats wildcard, the longer suffix wins; compared lower-case without a trailing dot.',
      }),
      backendPortName: parts.portName.optional().meta({
        description:
          "Kubernetes Service port name of this route's backends; the listener's when absent.",
      }),
      backends: z.array(parts.staticBackend).default([]).meta({
        description: 'Static backends of this route: "host:port" or {address, weight}.',
      }),
    })
    .meta({ description: "One route of a tls listener: server names and the pool they go to." });
  return z
    .strictObject({
      routes: z.array(route).min(1, { error: "a tls listener needs at least one route" }).meta({
        description: "Routes by TLS server name (SNI), each its own pool.",
      }),
      defaultRoute: z.string().optional().meta({
        description:
          "Route (by name) for a ClientHello without a server name, with one no route matches, or for bytes that are not TLS; without it such connections are closed and counted.",
      }),
      peekTimeout: parts.peekTimeout.meta({
        description:
          "How long a client may take to send its whole ClientHello; then the connection is closed (server-first protocols such as SSH never send one).",
      }),
      maxClientHello: parts.maxClientHello.default(D.DEFAULT_MAX_CLIENT_HELLO_BYTES).meta({
        description:
          "Most bytes read before the ClientHello is complete (TLS record headers included); a larger hello is refused.",
      }),
    })
    .meta({
      description:
        "TLS passthrough: route by the ClientHello's server name without terminating TLS (protocol: tls).",
    });
}

/** A host pattern; the message names what is wrong, as `parseHostPattern` says it. */
function hostPattern() {
  return z.string().superRefine((text, ctx) => {
    try {
      parseHostPattern(text);
    } catch (error) {
      const detail = errorMessage(error).replace(/^Cannot parse host pattern "[^"]*": /, "");
      ctx.addIssue({
        code: "custom",
        input: text,
        message: `invalid host ${JSON.stringify(text)}: ${detail}`,
      });
    }
  });
}
