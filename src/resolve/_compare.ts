/**
 * Orderings that keep plans deterministic and readable.
 *
 * @module
 */

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

/** What {@linkcode sortEntries} reads. */
export interface SortableEntry {
  readonly address?: string;
  readonly service?: string;
  readonly node?: string;
  readonly pod?: string;
  readonly reason?: string;
}

const DIGIT_RUN_WIDTH = 10;

/**
 * A key whose code-unit order compares runs of decimal digits as numbers, so that
 * `10.0.0.2` sorts before `10.0.0.10`: every digit run is left-padded with zeros to a fixed
 * width. Locale-independent.
 */
export function naturalKey(text: string): string {
  let key = "";
  let i = 0;
  while (i < text.length) {
    if (!isDigit(text.charCodeAt(i))) {
      const start = i;
      while (i < text.length && !isDigit(text.charCodeAt(i))) i++;
      key += text.slice(start, i);
      continue;
    }
    const start = i;
    while (i < text.length && isDigit(text.charCodeAt(i))) i++;
    key += text.slice(start, i).padStart(DIGIT_RUN_WIDTH, "0");
  }
  return key;
}

/**
 * `ip * 65536 + port` for `a.b.c.d:port`, exact in a double; `-1` for anything else.
 * Parsed by hand: this runs once per plan entry and must not allocate.
 */
function ipv4Rank(address: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (isDigit(c)) {
      part = part * 10 + (c - 48);
      if (++digits > 5) return -1;
    } else if (c === 46 && dots < 3 && digits > 0 && part <= 255) {
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c === 58 && dots === 3 && digits > 0 && part <= 255) {
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots = 4;
    } else {
      return -1;
    }
  }
  if (dots !== 4 || digits === 0 || part > 65535) return -1;
  return value * 65536 + part;
}

function compareText(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  return a < b ? -1 : 1;
}

/**
 * Sorts in place: entries without address first, then IPv4 addresses by number and port,
 * then other addresses (IPv6, host names) with digit runs compared as numbers (see
 * {@linkcode naturalKey}); ties by service, node, pod and reason, absent fields first.
 *
 * Plans can hold 100,000 entries (NodePort Services on large clusters), so ranks are
 * computed once per entry without allocating and the comparator mostly compares numbers.
 */
export function sortEntries<T>(items: T[], entryOf: (item: T) => SortableEntry): T[] {
  const n = items.length;
  const original = items.slice();
  const entries = original.map(entryOf);
  // 0: no address; 1: IPv4; 2: anything else.
  const groups = new Uint8Array(n);
  const ranks = new Float64Array(n);
  const texts: string[] = new Array(n).fill("");
  for (let i = 0; i < n; i++) {
    const address = entries[i]!.address;
    if (address === undefined) continue;
    const rank = ipv4Rank(address);
    if (rank >= 0) {
      groups[i] = 1;
      ranks[i] = rank;
    } else {
      groups[i] = 2;
      texts[i] = naturalKey(address);
    }
  }
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((i, j) => {
    const a = entries[i]!;
    const b = entries[j]!;
    return groups[i]! - groups[j]! || ranks[i]! - ranks[j]! ||
      compareText(texts[i], texts[j]) ||
      compareText(a.service, b.service) ||
      compareText(a.node, b.node) ||
      compareText(a.pod, b.pod) ||
      compareText(a.reason, b.reason);
  });
  for (let k = 0; k < n; k++) items[k] = original[order[k]!]!;
  return items;
}
