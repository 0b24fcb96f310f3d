/**
 * Test helpers: run the same computation on two tfjs backends and compare.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { mulberry32, type Rng } from "../../lib/data/rng.ts";
import { initBackend } from "../../lib/backend/mod.ts";

export { mulberry32, type Rng };

/** Makes sure both backends exist; leaves wasm active. */
export async function readyBoth(): Promise<void> {
  await initBackend("cpu");
  await initBackend("wasm");
}

/** Uniform random values in [-1, 1). */
export function randomArray(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng() * 2 - 1;
  return a;
}

/** Runs `fn` on `backend` and returns its outputs as plain arrays. */
export async function onBackend(backend: string, fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const outs = tf.tidy(fn);
  const arrays = outs.map((t) => t.dataSync() as Float32Array).map((a) => Float32Array.from(a));
  tf.dispose(outs);
  return arrays;
}

/** max |a − b| / max |b| (0 when both are all zero). */
export function relativeError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) return Infinity;
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}
