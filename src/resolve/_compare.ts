/**
 * Orderings that keep plans deterministic and readable.
 *
 * @module
 */

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

/**
 * Compares strings with runs of decimal digits compared as numbers, so `10.0.0.2:80` sorts
 * before `10.0.0.10:80`. Locale-independent; ties of equal value but different zero padding
 * fall back to code-unit order.
 */
export function compareNatural(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(j);
    if (isDigit(ca) && isDigit(cb)) {
      let ia = i;
      let jb = j;
      while (ia < a.length && a.charCodeAt(ia) === 48) ia++;
      while (jb < b.length && b.charCodeAt(jb) === 48) jb++;
      let ea = ia;
      let eb = jb;
      while (ea < a.length && isDigit(a.charCodeAt(ea))) ea++;
      while (eb < b.length && isDigit(b.charCodeAt(eb))) eb++;
      const lengthDiff = (ea - ia) - (eb - jb);
      if (lengthDiff !== 0) return lengthDiff;
      for (let k = 0; k < ea - ia; k++) {
        const d = a.charCodeAt(ia + k) - b.charCodeAt(jb + k);
        if (d !== 0) return d;
      }
      i = ea;
      j = eb;
      continue;
    }
    if (ca !== cb) return ca - cb;
    i++;
    j++;
  }
  if (a.length - i !== b.length - j) return (a.length - i) - (b.length - j);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Plain code-unit order; `undefined` sorts first. */
export function compareText(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  return a < b ? -1 : 1;
}

/** What {@linkcode compareEntries} reads. */
export interface SortableEntry {
  readonly address?: string;
  readonly service?: string;
  readonly node?: string;
  readonly pod?: string;
  readonly reason?: string;
}

/** Orders plan entries by address, then service, node, pod and reason. */
export function compareEntries(a: SortableEntry, b: SortableEntry): number {
  return compareNatural(a.address ?? "", b.address ?? "") ||
    compareText(a.service, b.service) ||
    compareText(a.node, b.node) ||
    compareText(a.pod, b.pod) ||
    compareText(a.reason, b.reason);
}
