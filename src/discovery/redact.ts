/**
 * Removes credentials from text bound for logs, errors and status: URL user-info, kubeconfig
 * secret fields and HTTP authorization values. One helper, so every path redacts the same way.
 *
 * @module
 */

/** What replaces a removed secret. */
export const REDACTED = "[redacted]";

/**
 * kubeconfig (and client-certificate) fields whose values are secrets, in YAML or JSON form.
 * See https://kubernetes.io/docs/reference/config-api/kubeconfig.v1/#AuthInfo
 */
const SECRET_FIELDS = [
  "token",
  "password",
  "client-key-data",
  "client-key",
  "client-certificate-data",
  "id-token",
  "refresh-token",
  "access-token",
  "client-secret",
  "secret",
];

const FIELD_PATTERN = new RegExp(
  `(["']?(?:${SECRET_FIELDS.join("|")})["']?\\s*[:=]\\s*)(?:"[^"\\n]*"|'[^'\\n]*'|[^\\s,}\\n]+)`,
  "gi",
);
/** `scheme://user:password@host` and `scheme://token@host`. */
const USERINFO_PATTERN = /([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi;
/** `Authorization: Bearer x`, `Basic x` as they appear in headers or messages. */
const AUTH_PATTERN = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g;
/** PEM private keys, wherever they appear. */
const PEM_KEY_PATTERN =
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g;

/**
 * Returns `text` with every credential replaced by {@linkcode REDACTED}: user-info in URLs
 * (`https://user:password@host` → `https://[redacted]@host`), values of secret kubeconfig
 * fields (`token: abc` → `token: [redacted]`), `Bearer`/`Basic` authorization values and PEM
 * private keys. Everything else is kept, so messages stay useful.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(PEM_KEY_PATTERN, REDACTED)
    .replace(USERINFO_PATTERN, `$1${REDACTED}@`)
    .replace(AUTH_PATTERN, `$1 ${REDACTED}`)
    .replace(FIELD_PATTERN, `$1${REDACTED}`);
}

/**
 * A URL without its user-info, for logs and descriptions; text that is not a URL is redacted
 * with {@linkcode redactSecrets}.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === "" && parsed.password === "") return url;
    parsed.username = "";
    parsed.password = "";
    return parsed.href.replace(/\/$/, url.endsWith("/") ? "/" : "");
  } catch {
    return redactSecrets(url);
  }
}
