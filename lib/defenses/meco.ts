/**
 * MeCo at deployment: y = T(x + h(x, ε)) with a fresh ε ~ N(0, I) for every
 * query (paper Sec. 4). Each call draws new noise from a seeded stream, so a
 * run is reproducible while no two queries share ε.
 *
 * The `official` variant deploys as the official attack scripts do
 * (DFME/dfme/train_cifar10.py `train`, see lib/meco/official.ts): for every query batch
 * fresh per-image random weights of the `Res2Net_weight` network, fresh weight
 * noise in its forward pass, its BatchNorms normalising each image on its own
 * (training mode, as the official code leaves it), no ε factor, and
 * y = T(x + s·h(x)) with s = `bound` (the official `--scale`), in the official
 * code's normalised units converted to ours.
 *
 * From a config entry, `buildDefense` (lib/defenses/build.ts) builds
 * it with the entry's `variant`, `width` and `bound`; training T and h is
 * lib/meco's.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { deriveSeed } from "../data/rng.ts";
import {
  disposeOfficialWeights,
  drawOfficialWeights,
  OFFICIAL,
  officialPerturbationOurUnits,
} from "../meco/official.ts";
import type { Defense } from "./defense.ts";
import { perturbationInference } from "../models/perturbation.ts";

/** A MeCo-defended victim: the target T and the perturbation generator h. */
export interface MecoModels {
  /** The defensively trained target T (outputs logits). */
  target: tf.LayersModel;
  /** h_ω(x, ε) (inputs [x, ε], output δ). */
  perturb: tf.LayersModel;
}

/** Options of {@linkcode mecoDefense}. */
export interface MecoDeployOptions {
  /** Seed of the noise stream. */
  seed: number;
  /**
   * "paper": the trained h. "official": the official attack scripts' random
   * per-image `Res2Net_weight`, re-drawn for every query batch (`perturb` unused).
   */
  variant?: "paper" | "official";
  /** Official variant: `hidden_planes` of h (default 2). */
  width?: number;
  /** Official variant: the `--scale` of h's output, in the official normalised units (default 0.27). */
  bound?: number;
}

/** h's folded inference form per model (perturbation.ts), or null when the model is not laid out for it. */
const inference = new WeakMap<tf.LayersModel, ((x: tf.Tensor4D, eps: tf.Tensor4D) => tf.Tensor4D) | null>();

/**
 * The perturbed input x + h(x, ε) (inference mode): through h's folded form ({@linkcode perturbationInference})
 * when h is laid out as `perturbationNet` builds it, else through the model's layers.
 */
export function perturbInput(perturb: tf.LayersModel, x: tf.Tensor4D, eps: tf.Tensor4D): tf.Tensor4D {
  let h = inference.get(perturb);
  if (h === undefined) inference.set(perturb, h = perturbationInference(perturb) ?? null);
  return tf.tidy(() => tf.add(x, h === null ? perturb.apply([x, eps], { training: false }) as tf.Tensor4D : h(x, eps)));
}

/**
 * Wraps trained MeCo models as a {@linkcode Defense} named `name` (default
 * "meco"). It neither owns nor disposes the models.
 *
 * @example
 * ```ts ignore
 * const defense = mecoDefense({ target, perturb }, { seed: 0 });
 * const probs = defense.predict(x); // T(x + h(x, ε)), fresh ε
 * ```
 */
export function mecoDefense(models: MecoModels, opts: MecoDeployOptions, name = "meco"): Defense {
  let calls = 0;
  const variant = opts.variant ?? "paper";
  return {
    name,
    predict: (x) => {
      const seed = deriveSeed(opts.seed, calls++);
      if (variant === "official") {
        const [n, , , c] = x.shape;
        const weights = drawOfficialWeights(n, c, opts.width ?? 2, deriveSeed(seed, 1));
        try {
          return tf.tidy(() => {
            const delta = officialPerturbationOurUnits(x, weights, opts.bound ?? 0.27, {
              epsilon: 1,
              weightNoise: OFFICIAL.weightNoise,
              seed: deriveSeed(seed, 2),
            });
            return tf.softmax(models.target.apply(tf.add(x, delta), { training: false }) as tf.Tensor2D);
          });
        } finally {
          disposeOfficialWeights(weights);
        }
      }
      return tf.tidy(() => {
        const eps = tf.randomNormal(x.shape, 0, 1, "float32", seed) as tf.Tensor4D;
        const logits = models.target.apply(perturbInput(models.perturb, x, eps), { training: false });
        return tf.softmax(logits as tf.Tensor2D);
      });
    },
    dispose: () => {},
  };
}
