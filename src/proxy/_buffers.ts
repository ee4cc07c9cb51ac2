/**
 * Copy buffers of forwarding: each direction starts small so idle connections hold little
 * memory, and steps up (1 KiB -> 16 KiB -> 64 KiB) once a read fills its buffer, with
 * recycled buffers, so short connections with a few KiB of answer neither hold nor allocate
 * 64 KiB.
 *
 * @module
 */

/** Size of a direction's first buffer. */
export const INITIAL_BUFFER_BYTES = 1024;
const MID_BUFFER_BYTES = 16 * 1024;
const MAX_BUFFER_BYTES = 64 * 1024;
/** Recycled buffers per size; bounded so a burst does not pin memory for good. */
const FREE_BUFFERS_PER_SIZE = 64;
const freeBuffers: Record<number, Uint8Array<ArrayBuffer>[]> = {
  [MID_BUFFER_BYTES]: [],
  [MAX_BUFFER_BYTES]: [],
};

/**
 * The next larger buffer after a read filled `buffer`, which is given back; `buffer` itself
 * when it is the largest already. Call it only when no read is pending on `buffer`.
 */
export function grownBuffer(buffer: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  if (buffer.length >= MAX_BUFFER_BYTES) return buffer;
  const size = buffer.length < MID_BUFFER_BYTES ? MID_BUFFER_BYTES : MAX_BUFFER_BYTES;
  const next = freeBuffers[size]!.pop() ?? new Uint8Array(size);
  giveBuffer(buffer);
  return next;
}

/** Gives a buffer back for reuse by another connection; no read may be pending on it. */
export function giveBuffer(buffer: Uint8Array<ArrayBuffer>): void {
  const list = freeBuffers[buffer.length];
  if (list !== undefined && list.length < FREE_BUFFERS_PER_SIZE) list.push(buffer);
}
