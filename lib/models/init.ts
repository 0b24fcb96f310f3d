/**
 * Seeded PyTorch-style initialisers, so that models start where the
 * reference implementations' models start and every seed repeats exactly.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { MecoBatchNorm } from "./batch_norm.ts";

/** A tfjs-layers weight initialiser. */
export type Initializer = ReturnType<typeof tf.initializers.zeros>;

/**
 * Hands out distinct, reproducible initialiser seeds for the layers of one
 * model built from `seed`.
 */
export class SeedStream {
  #next: number;
  /** @param seed the run's seed */
  constructor(seed: number) {
    this.#next = (seed >>> 0) * 7919 + 1;
  }
  /** The next layer's seed. */
  next(): number {
    return this.#next++;
  }
}

/**
 * PyTorch's default for Conv/Linear weights: kaiming_uniform(a=√5), i.e.
 * U(−1/√fan_in, 1/√fan_in).
 */
export function torchWeightInit(seeds: SeedStream): Initializer {
  return tf.initializers.varianceScaling({
    scale: 1 / 3,
    mode: "fanIn",
    distribution: "uniform",
    seed: seeds.next(),
  });
}

/** PyTorch's default bias init: U(−1/√fan_in, 1/√fan_in). */
export function torchBiasInit(fanIn: number, seeds: SeedStream): Initializer {
  const b = 1 / Math.sqrt(fanIn);
  return tf.initializers.randomUniform({ minval: -b, maxval: b, seed: seeds.next() });
}

/**
 * BatchNorm layer with PyTorch's epsilon (1e-5) and momentum (0.1 ≙ tfjs 0.9);
 * `relu`: followed by ReLU in the same layer (fused in training where the kernel runs).
 */
export function batchNorm(
  opts: { center?: boolean; scale?: boolean; name?: string; relu?: boolean } = {},
): tf.layers.Layer {
  return new MecoBatchNorm({ epsilon: 1e-5, momentum: 0.9, ...opts });
}

/**
 * BatchNorm without learned affine parameters (PyTorch's `affine=False`).
 *
 * tfjs 4.22's BatchNormalization with `center: false, scale: false` fails in
 * training mode (it reads the absent gamma), so this layer keeps gamma = 1 and
 * beta = 0 and is marked non-trainable: no optimizer ever sees them, the
 * output is the same, and batch statistics and moving averages still work as
 * usual in training mode.
 */
export function frozenAffineBatchNorm(): tf.layers.Layer {
  const bn = batchNorm();
  bn.trainable = false;
  return bn;
}
