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
  /** tf.profile peak bytes of live tensors during a batch-256 query (null: too many kernel calls to profile). */
  peak_bytes_b256: number | null;
  /** Of those, bytes allocated by the call itself (peak minus what was live before it). */
  peak_extra_bytes_b256: number | null;
}

/** Repetitions: `rounds` rounds over all defenses, each timing `b1` batch-1 calls and `b256` batch-256 calls. */
export interface CostReps {
  /** Rounds over the defenses (interleaving spreads other load on the machine evenly over them). */
  rounds: number;
  /** Timed batch-1 calls per defense and round. */
  b1: number;
  /** Timed batch-256 calls per defense and round. */
  b256: number;
}

/** Default repetitions: 5 rounds of 10 batch-1 and 3 batch-256 calls. */
export const DEFAULT_REPS: CostReps = { rounds: 5, b1: 10, b256: 3 };

/** A defense slower than this per batch-256 call gets one such call in each of the first two rounds only. */
const SLOW_MS = 1000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function call(defense: Defense, x: tf.Tensor4D): number {
  const t = performance.now();
  const p = defense.predict(x);
  p.dataSync();
  p.dispose();
  return performance.now() - t;
}

/**
 * Measures every defense on the images `x256` (a batch of 256 in [-1, 1]) and
 * on its first image: first the peak tensor memory of one batch-256 query
 * (which also warms the defense up), then `reps.rounds` interleaved rounds of
 * timed calls, so that load from elsewhere on the machine falls on all
 * defenses alike. Latencies are medians over all timed calls.
 *
 * @example
 * ```ts ignore
 * const [a, b] = await measureDefenses([undefendedDefense, madDefense], x256);
 * console.log(b.ms_b256 / a.ms_b256);
 * ```
 */
export async function measureDefenses(
  defenses: Defense[],
  x256: tf.Tensor4D,
  reps: CostReps = DEFAULT_REPS,
): Promise<DefenseCost[]> {
  if (x256.shape[0] !== 256) {
    throw new RangeError(`measureDefense: expected a batch of 256 images, got ${x256.shape[0]}`);
  }
  const x1 = tf.slice(x256, 0, 1) as tf.Tensor4D;
  try {
    const mem: { peak: number | null; before: number; slow: boolean }[] = [];
    for (const defense of defenses) {
      const before = tf.memory().numBytes;
      let peak: number | null = null;
      const t0 = performance.now();
      try {
        peak = (await tf.profile(() => void call(defense, x256))).peakBytes;
      } catch (e) {
        // tf.profile takes Math.max(...) over every kernel call: a call of ~10⁵ kernels overflows the stack.
        if (!(e instanceof RangeError)) throw e;
      }
      const slow = performance.now() - t0 > SLOW_MS;
      call(defense, x1);
      mem.push({ peak, before, slow });
    }
    const b1: number[][] = defenses.map(() => []);
    const b256: number[][] = defenses.map(() => []);
    for (let r = 0; r < reps.rounds; r++) {
      defenses.forEach((defense, i) => {
        for (let k = 0; k < reps.b1; k++) b1[i].push(call(defense, x1));
        const n = mem[i].slow ? (r < 2 ? 1 : 0) : reps.b256;
        for (let k = 0; k < n; k++) b256[i].push(call(defense, x256));
      });
    }
    return defenses.map((_, i) => {
      const ms_b256 = median(b256[i]);
      const { peak, before } = mem[i];
      return {
        ms_b1: median(b1[i]),
        ms_b256,
        reps_b1: b1[i].length,
        reps_b256: b256[i].length,
        ms_per_query_b256: ms_b256 / 256,
        peak_bytes_b256: peak,
        peak_extra_bytes_b256: peak === null ? null : peak - before,
      };
    });
  } finally {
    x1.dispose();
  }
}

/** {@linkcode measureDefenses} for one defense. */
export async function measureDefense(
  defense: Defense,
  x256: tf.Tensor4D,
  reps: CostReps = DEFAULT_REPS,
): Promise<DefenseCost> {
  return (await measureDefenses([defense], x256, reps))[0];
}
