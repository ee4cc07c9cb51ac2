/**
 * HTML escaping for the status page. Every string that reaches the page from outside
 * (Kubernetes names, annotation values, error messages, config names) goes through
 * {@linkcode escapeHtml}; the page never places such a string in a script, a style, a URL or
 * an unquoted attribute, where escaping alone would not be enough.
 *
 * @module
 */

const ENTITIES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes `text` for HTML element content and double- or single-quoted attribute values.
 * Control characters other than tab and newline become U+FFFD, so a name cannot smuggle
 * terminal escapes or NULs into a copied page.
 */
export function escapeHtml(text: string): string {
  return text
    .replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c)
    // deno-lint-ignore no-control-regex
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, "\ufffd");
}

/** Markup that is already safe: built by {@linkcode html} from escaped parts. */
export class Html {
  /** The markup. */
  readonly value: string;
  /** Wraps markup; only {@linkcode html} and constant strings of this folder should call it. */
  constructor(value: string) {
    this.value = value;
  }
  /** The markup, so an `Html` can be written out directly. */
  toString(): string {
    return this.value;
  }
}

/** Values {@linkcode html} accepts: markup, text (escaped), numbers, lists of them; nothing for `undefined`, `null` or `false`. */
export type HtmlValue = Html | string | number | boolean | undefined | null | readonly HtmlValue[];

/**
 * Template tag: the literal parts are markup, every interpolated value is escaped unless it
 * is {@linkcode Html} already. Arrays are joined; `undefined`, `null` and `false` render as
 * nothing, so conditional parts read `${cond && html`...`}`.
 */
export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): Html {
  let out = strings[0] ?? "";
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? "");
  return new Html(out);
}

function render(value: HtmlValue): string {
  if (value instanceof Html) return value.value;
  if (Array.isArray(value)) return value.map(render).join("");
  if (value === undefined || value === null || value === false) return "";
  return escapeHtml(String(value));
}
