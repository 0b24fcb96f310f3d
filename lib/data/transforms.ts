/**
 * Pixel-range transforms between the loaders' [0, 1] and the models' input
 * range. Every victim, clone and generator in this workbench works on images
 * in [-1, 1] (the range of the DFME generator's tanh output), so datasets are
 * mapped once with {@linkcode toSignedRange} before training or evaluation.
 *
 * @module
 */
import type { Dataset } from "./dataset.ts";

/** A copy of `ds` with pixels mapped from [0, 1] to [-1, 1] (x ↦ 2x − 1). */
export function toSignedRange(ds: Dataset): Dataset {
  const images = new Float32Array(ds.images.length);
  for (let i = 0; i < images.length; i++) images[i] = ds.images[i] * 2 - 1;
  return { ...ds, images };
}
