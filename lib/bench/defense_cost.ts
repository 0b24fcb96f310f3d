/**
 * Deployment cost of a defense (MeCo paper, Tables 13–15): per-query latency
 * at batch 1 and batch 256, and peak tensor memory of one batch-256 query.
 *
 * Memory is tfjs's own accounting (`tf.profile`'s `peakBytes`: bytes of all
 * live tensors at the high-water mark of the call, weights included), not the
 * process RSS, which wasm never returns to the OS and so cannot be attributed
 * to one defense.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Defense } from "../defenses/defense.ts";

/** What {@linkcode measureDefense} reports. */
export interface DefenseCost {
  /** Median milliseconds of one batch-1 query. */
  ms_b1: number;
  /** Median milliseconds of one batch-256 query. */
  ms_b256: number;
  /** Timed calls behind ms_b1 (fewer for a defense slower than a second per call). */
  reps_b1: number;
  /** Timed calls behind ms_b256. */
  reps_b256: number;
  /** Milliseconds per image at batch 256 (ms_b256 / 256). */
  ms_per_query_b256: number;
  /** tf.profile peak bytes of live tensors during a batch-256 query. */
  peak_bytes_b256: number;
  /** Of those, bytes allocated by the call itself (peak minus what was live before it). */
  peak_extra_bytes_b256: number;
}

/** Repetitions: [warm-up, timed] per batch size (warm-up includes one untimed first call). */
export interface CostReps {
  /** Batch-1 [warm-up, timed]. */
  b1: [number, number];
  /** Batch-256 [warm-up, timed]. */
  b256: [number, number];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A defense slower than this per call is timed with {@linkcode SLOW_REPS} (a few calls say enough). */
const SLOW_MS = 1000;
const SLOW_REPS: [number, number] = [0, 3];

function timeQueries(defense: Defense, x: tf.Tensor4D, [warm, timed]: [number, number]): [ms: number, reps: number] {
  const once = () => {
    const t = performance.now();
    const p = defense.predict(x);
    p.dataSync();
    p.dispose();
    return performance.now() - t;
  };
  const first = once();
  if (first > SLOW_MS) [warm, timed] = SLOW_REPS;
  for (let i = 1; i < warm; i++) once();
  const xs: number[] = [];
  for (let i = 0; i < timed; i++) xs.push(once());
  return [median(xs), timed];
}

/**
 * Times `defense` on the images `x256` (a batch of 256 in [-1, 1]) and on its
 * first image, and profiles the peak tensor memory of one batch-256 query.
 *
 * @example
 * ```ts ignore
 * const cost = await measureDefense(defense, x256);
 * console.log(cost.ms_b1, cost.ms_b256);
 * ```
 */
export async function measureDefense(
  defense: Defense,
  x256: tf.Tensor4D,
  reps: CostReps = { b1: [5, 50], b256: [3, 15] },
): Promise<DefenseCost> {
  if (x256.shape[0] !== 256) {
    throw new RangeError(`measureDefense: expected a batch of 256 images, got ${x256.shape[0]}`);
  }
  const x1 = tf.slice(x256, 0, 1) as tf.Tensor4D;
  try {
    const [ms_b1, reps_b1] = timeQueries(defense, x1, reps.b1);
    const [ms_b256, reps_b256] = timeQueries(defense, x256, reps.b256);
    const before = tf.memory().numBytes;
    const info = await tf.profile(() => {
      const p = defense.predict(x256);
      p.dataSync();
      p.dispose();
    });
    return {
      ms_b1,
      ms_b256,
      reps_b1,
      reps_b256,
      ms_per_query_b256: ms_b256 / 256,
      peak_bytes_b256: info.peakBytes,
      peak_extra_bytes_b256: info.peakBytes - before,
    };
  } finally {
    x1.dispose();
  }
}
