/**
 * Value-level building blocks of the config schema: durations, addresses, Kubernetes names and
 * label selectors, bounded integers. `schema.ts` composes them into sections.
 *
 * @module
 */
import { z } from "zod";
import { formatDurationMs, parseDurationMs } from "../core/duration.ts";
import { parseHostPort } from "../core/address.ts";
import { suggest } from "../core/suggest.ts";
import { isPrime } from "../balancer/mod.ts";
import { errorMessage } from "../core/error_message.ts";
import { describeValue, listValues } from "./_messages.ts";

/** Longest accepted duration: timers in JavaScript overflow past 2^31-1 ms (about 24.8 days). */
export const MAX_DURATION_MS = 596 * 3_600_000;

/** What the JSON schema advertises for duration strings; {@linkcode parseDurationMs} decides. */
export const DURATION_PATTERN = "^\\s*(\\d+(\\.\\d+)?|(\\d+(\\.\\d+)?(ms|s|m|h))+)\\s*$";

// ---------------------------------------------------------------------------------------
// Building blocks

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (issue) => {
      if (issue.code !== "invalid_value") return undefined;
      const got = issue.input;
      const hint = typeof got === "string" ? suggest(got, values) : undefined;
      return `expected one of ${listValues(values)}, got ${describeValue(got)}` +
        (hint === undefined ? "" : `: did you mean ${JSON.stringify(hint)}?`);
    },
  });
}

/**
 * An integer within `[min, max]`; out-of-range values read `port 70000 is out of range 1-65535`
 * (`label` is `"port"` there).
 */
export function intInRange(min: number, max: number, label = "") {
  const error = (issue: { input?: unknown }) => {
    const got = issue.input;
    if (got === undefined) return undefined;
    if (typeof got !== "number") return `expected an integer, got ${describeValue(got)}`;
    if (!Number.isInteger(got)) return `expected an integer, got ${got}`;
    return `${label === "" ? "" : `${label} `}${got} is out of range ${min}-${max}`;
  };
  return z.int({ error }).min(min, { error }).max(max, { error });
}

/** A duration as written (`"250ms"`, `"1m30s"`, `5` seconds), parsed to milliseconds. */
export function duration(defaultMs: number, options: { isZeroAllowed: boolean }) {
  return z
    .union([z.number().meta({ minimum: 0 }), z.string().meta({ pattern: DURATION_PATTERN })], {
      error: (issue) =>
        issue.code === "invalid_union"
          ? `expected a duration such as "5s" or a number of seconds, got ${
            describeValue(issue.input)
          }`
          : undefined,
    })
    .transform((value, ctx) => {
      const shown = JSON.stringify(value);
      let ms: number;
      try {
        ms = parseDurationMs(value);
      } catch (error) {
        const detail = typeof value === "number"
          ? "must not be negative"
          : `expected a number of seconds or a number with a unit (ms, s, m, h), e.g. "5s", "250ms" or "1m30s"`;
        ctx.issues.push({
          code: "custom",
          input: value,
          message: `invalid duration ${shown}: ${detail}`,
          params: { cause: error },
        });
        return z.NEVER;
      }
      if (ms === 0 && !options.isZeroAllowed) {
        ctx.issues.push({
          code: "custom",
          input: value,
          message: `invalid duration ${shown}: must be greater than 0`,
        });
        return z.NEVER;
      }
      if (ms > MAX_DURATION_MS) {
        ctx.issues.push({
          code: "custom",
          input: value,
          message: `invalid duration ${shown}: must be at most ${
            formatDurationMs(MAX_DURATION_MS)
          }`,
        });
        return z.NEVER;
      }
      return ms;
    })
    .prefault(formatDurationMs(defaultMs));
}

/**
 * Checks `host:port` with {@linkcode parseHostPort} and words its complaint for config:
 * `port 70000 is out of range 1-65535`, `invalid address "x": expected "host:port" or ":port"`.
 * @returns the message, or `undefined` when the address is fine
 */
export function checkAddress(
  text: string,
  options: { isHostRequired: boolean },
): string | undefined {
  let host: string;
  try {
    host = parseHostPort(text).host;
  } catch (error) {
    const message = errorMessage(error);
    const marker = `address "${text}": `;
    const at = message.indexOf(marker);
    const detail = at < 0 ? message : message.slice(at + marker.length);
    return error instanceof RangeError
      ? detail
      : `invalid address ${JSON.stringify(text)}: ${detail}`;
  }
  if (host === "") {
    return options.isHostRequired
      ? `invalid address ${JSON.stringify(text)}: a host is required, e.g. "10.0.0.1:80"`
      : undefined;
  }
  if (!isHostValid(host)) {
    return `invalid address ${JSON.stringify(text)}: ${
      JSON.stringify(host)
    } is not an IP address or host name`;
  }
  return undefined;
}

export function isHostValid(host: string): boolean {
  if (host.includes(":")) return /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/.test(host);
  return host.length <= 253 &&
    host.split(".").every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}

export function address(options: { isHostRequired: boolean }) {
  return z.string().superRefine((text, ctx) => {
    const message = checkAddress(text, options);
    if (message !== undefined) ctx.addIssue({ code: "custom", input: text, message });
  });
}

export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** Why `text` is not a DNS-1123 label (Kubernetes namespaces), or `undefined`. */
export function checkDns1123Label(text: string): string | undefined {
  if (text.length === 0) return "must not be empty";
  if (text.length > 63) return `must be at most 63 characters, got ${text.length}`;
  if (!DNS1123_LABEL.test(text)) {
    return "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit";
  }
  return undefined;
}

/**
 * Why `text` is not an IANA service name (`IANA_SVC_NAME`, what Kubernetes accepts as a port
 * name, RFC 6335 section 5.1), or `undefined`.
 */
export function checkPortName(text: string): string | undefined {
  if (text.length === 0) return "must not be empty";
  if (text.length > 15) return `must be at most 15 characters, got ${text.length}`;
  if (!/^[-a-z0-9]+$/.test(text)) return "must contain only lowercase letters, digits and '-'";
  if (!/[a-z]/.test(text)) return "must contain at least one letter";
  if (text.includes("--")) return "must not contain '--'";
  if (text.startsWith("-") || text.endsWith("-")) return "must not begin or end with '-'";
  return undefined;
}

export const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
export const DNS1123_SUBDOMAIN =
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function checkLabelKey(text: string): string | undefined {
  const slash = text.lastIndexOf("/");
  const prefix = slash < 0 ? undefined : text.slice(0, slash);
  const name = slash < 0 ? text : text.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) {
    return `invalid label key ${JSON.stringify(text)}: the prefix must be a DNS subdomain`;
  }
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) {
    return `invalid label key ${
      JSON.stringify(text)
    }: the name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

export function checkLabelValue(text: string): string | undefined {
  if (text === "" || (text.length <= 63 && LABEL_NAME.test(text))) return undefined;
  return `invalid label value ${
    JSON.stringify(text)
  }: must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
}

/** A map of label names to values, every key and value checked as Kubernetes does. */
export function labelSelector() {
  return z
    .record(z.string(), z.string())
    .superRefine((labels, ctx) => {
      for (const [name, value] of Object.entries(labels)) {
        const keyProblem = checkLabelKey(name);
        if (keyProblem !== undefined) {
          ctx.addIssue({
            code: "custom",
            input: name,
            path: [name],
            message: keyProblem,
            params: { target: "key" },
          });
        }
        const valueProblem = checkLabelValue(value);
        if (valueProblem !== undefined) {
          ctx.addIssue({ code: "custom", input: value, path: [name], message: valueProblem });
        }
      }
    })
    .optional();
}

export function nextPrime(n: number): number {
  let p = n + 1;
  while (!isPrime(p)) p++;
  return p;
}

export function refined(check: (text: string) => string | undefined, what: string) {
  return z.string().superRefine((text, ctx) => {
    const detail = check(text);
    if (detail !== undefined) {
      ctx.addIssue({
        code: "custom",
        input: text,
        message: `invalid ${what} ${JSON.stringify(text)}: ${detail}`,
      });
    }
  });
}
