/**
 * The workbench's seeded randomness, in one place: a small pseudo-random
 * number generator (mulberry32) and the helpers built on it (uniform
 * integers, standard normal draws, shuffles and permutations), and
 * {@linkcode deriveSeed} / {@linkcode seedSequence}, which give every
 * purpose of a run (initialisation, each iteration's draws, batch orders)
 * its own reproducible seed, also for tfjs's seeded ops.
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

/** A standard normal draw from `rng` (Box–Muller; two uniform draws). */
export function normal(rng: Rng): number {
  const u = 1 - rng(), v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
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

/** A permutation of `0 .. n-1` determined by `seed` (a {@linkcode shuffleInPlace} with `mulberry32(seed)`). */
export function shuffledIndices(n: number, seed: number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return shuffleInPlace(order, mulberry32(seed));
}

/**
 * Successive seeds for the draws of one step: the k-th call (k = 0, 1, ...)
 * returns `deriveSeed(seed, ...salts, k)`.
 *
 * @example
 * ```ts
 * import { deriveSeed, seedSequence } from "./rng.ts";
 * const next = seedSequence(7, 3); // seed 7, iteration 3
 * console.log(next() === deriveSeed(7, 3, 0), next() === deriveSeed(7, 3, 1)); // true true
 * ```
 */
export function seedSequence(seed: number, ...salts: number[]): () => number {
  let k = 0;
  return () => deriveSeed(seed, ...salts, k++);
}
