/**
 * A small seeded pseudo-random number generator (mulberry32) and helpers
 * built on it, for reproducible shuffles and sampling anywhere in the
 * workbench.
 *
 * @module
 */

/** A source of uniform floats in `[0, 1)`. */
export type Rng = () => number;

/**
 * mulberry32: a fast 32-bit-state generator, good enough for shuffling and
 * sampling (not for cryptography). The same seed always gives the same
 * sequence; seeds are taken modulo 2^32.
 *
 * @example
 * ```ts
 * import { mulberry32 } from "./rng.ts";
 * const rand = mulberry32(42);
 * console.log(rand()); // 0 <= x < 1, same every run
 * ```
 */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform integer in `[0, n)` drawn from `rng`. */
export function randomInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

/**
 * Shuffles `items` in place (Fisher–Yates) using `rng`, and returns it.
 *
 * @example
 * ```ts
 * import { mulberry32, shuffleInPlace } from "./rng.ts";
 * shuffleInPlace([1, 2, 3, 4], mulberry32(7));
 * ```
 */
export function shuffleInPlace<
  T extends { length: number; [i: number]: unknown },
>(
  items: T,
  rng: Rng,
): T {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(rng, i + 1);
    const tmp = items[i];
    items[i] = items[j];
    items[j] = tmp;
  }
  return items;
}

/**
 * A new 32-bit seed derived from `seed` and any number of integer salts
 * (e.g. run index, epoch), so that streams for different purposes differ
 * but stay reproducible.
 *
 * @example
 * ```ts
 * import { deriveSeed, mulberry32 } from "./rng.ts";
 * const epochRng = mulberry32(deriveSeed(1234, 3)); // seed 1234, epoch 3
 * console.log(epochRng());
 * ```
 */
export function deriveSeed(seed: number, ...salts: number[]): number {
  let h = (seed >>> 0) ^ 0x9e3779b9;
  for (const s of [...salts, salts.length]) {
    h = Math.imul(h ^ (s >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}
