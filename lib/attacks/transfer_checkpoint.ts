/**
 * Checkpoint parts of the data-based attacks: a transfer set (images and
 * targets) and a clone's weights, saved into a checkpoint stage and restored
 * from it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { loadTensors, saveTensors } from "../train/checkpoint.ts";
import { ResumeError } from "./checkpoint.ts";
import { TransferSet } from "./transfer_set.ts";

/** Saves `set` to `dir` (tensors.json + tensors.bin). */
export async function saveTransferSet(dir: string, set: TransferSet): Promise<void> {
  const [h, w, c] = set.imageShape;
  const images = tf.tensor4d(set.images, [set.n, h, w, c]);
  const targets = tf.tensor2d(set.targets, [set.n, set.numClasses]);
  try {
    await saveTensors(dir, { images, targets }, { n: set.n });
  } finally {
    tf.dispose([images, targets]);
  }
}

/**
 * Loads a transfer set saved by {@linkcode saveTransferSet}; it must hold
 * `n` examples of the given image shape and class count.
 *
 * @throws {ResumeError} when it does not
 */
export async function loadTransferSet(
  dir: string,
  imageShape: readonly [number, number, number],
  numClasses: number,
  n: number,
): Promise<TransferSet> {
  const { tensors } = await loadTensors(dir);
  try {
    const images = tensors.images, targets = tensors.targets;
    const want = `[${n}, ${imageShape}] and [${n}, ${numClasses}]`;
    if (
      images === undefined || targets === undefined || images.shape.join() !== [n, ...imageShape].join() ||
      targets.shape.join() !== [n, numClasses].join()
    ) {
      throw new ResumeError(dir, `transfer set should be ${want}, found [${images?.shape}] and [${targets?.shape}]`);
    }
    const set = new TransferSet(imageShape, numClasses, n);
    set.addArrays(images.dataSync() as Float32Array, targets.dataSync() as Float32Array);
    return set;
  } finally {
    tf.dispose(Object.values(tensors));
  }
}
