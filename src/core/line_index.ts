/**
 * Source offsets to 1-based line and column, for messages that point into a text.
 *
 * @module
 */

/**
 * The line starts of one text, found once; each look-up is a binary search. A line ends at
 * `\n`, `\r\n` or a lone `\r`; columns count UTF-16 code units, as editors jump to them.
 */
export class LineIndex {
  readonly #starts: number[];

  constructor(text: string) {
    const starts = [0];
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x0a) starts.push(i + 1);
      else if (c === 0x0d && text.charCodeAt(i + 1) !== 0x0a) starts.push(i + 1);
    }
    this.#starts = starts;
  }

  /** Line and column (both 1-based) of `offset`. */
  position(offset: number): { line: number; column: number } {
    const starts = this.#starts;
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (starts[mid]! <= offset) low = mid;
      else high = mid - 1;
    }
    return { line: low + 1, column: offset - starts[low]! + 1 };
  }
}
