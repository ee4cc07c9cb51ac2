/**
 * "Did you mean" suggestions for misspelled keys and values.
 *
 * @module
 */

/**
 * Optimal string alignment distance (Levenshtein plus adjacent transpositions), so
 * `listenerAdress` is 1 away from `listenerAddress` and `naem` 1 away from `name`.
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => {
    const row = new Array<number>(cols).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j < cols; j++) d[0]![j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** Lower case without `_`, `-` and spaces: `listener_address` and `listenerAddress` compare equal. */
function fold(word: string): string {
  return word.toLowerCase().replace(/[-_\s]/g, "");
}

/**
 * Picks the closest candidate among those close enough to be a likely typo of `word` (at most
 * a third of the longer of the two words differs), or `undefined` when none is. Case, `_` and
 * `-` are ignored; ties go to the earlier candidate. A word that starts exactly one candidate
 * suggests that candidate when no other is close enough.
 */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const folded = fold(word);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const other = fold(candidate);
    const limit = Math.max(1, Math.floor(Math.max(folded.length, other.length) / 3));
    const distance = editDistance(folded, other);
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best !== undefined) return best;
  // A cut-short word (`warn` for `warning`) is a likely slip even when far in distance.
  const prefixed = folded.length >= 3 ? candidates.filter((c) => fold(c).startsWith(folded)) : [];
  return prefixed.length === 1 ? prefixed[0] : undefined;
}
