/**
 * Small non-cryptographic 32-bit hashes shared by the balancers and the shared counters. They
 * must give the same value in every isolate and process (replicas and workers agree on them),
 * so they depend on nothing but their input.
 *
 * @module
 */

/** 32-bit FNV-1a over UTF-16 code units, starting from `seed` (FNV's offset basis: `0x811c9dc5`). */
export function fnv1a32(text: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's 32-bit finalizer: every input bit affects every output bit. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
