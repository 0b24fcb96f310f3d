/**
 * MeCo at deployment: y = T(x + h(x, ε)) with a fresh ε ~ N(0, I) for every
 * query (paper Sec. 4). Each call draws new noise from a seeded stream, so a
 * run is reproducible while no two queries share ε.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { deriveSeed } from "../data/rng.ts";
import type { Defense } from "../defenses/defense.ts";
import { perturbationNet } from "../models/perturbation.ts";

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
   * "paper": the trained h. "official": the official code's variant, whose
   * perturbation network is randomly re-initialised (never trained): a new
   * random h for every query batch.
   */
  variant?: "paper" | "official";
  /** Perturbation width and bound, needed to re-initialise h for the official variant. */
  width?: number;
  /** L∞ bound of δ (official variant). */
  bound?: number;
}

/** The perturbed input x + h(x, ε) (inference mode). */
export function perturbInput(perturb: tf.LayersModel, x: tf.Tensor4D, eps: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.add(x, perturb.apply([x, eps], { training: false }) as tf.Tensor4D));
}

/**
 * Wraps trained MeCo models as a {@linkcode Defense}.
 *
 * @example
 * ```ts ignore
 * const defense = mecoDefense({ target, perturb }, { seed: 0 });
 * const probs = defense.predict(x); // T(x + h(x, ε)), fresh ε
 * ```
 */
export function mecoDefense(models: MecoModels, opts: MecoDeployOptions): Defense {
  let calls = 0;
  const variant = opts.variant ?? "paper";
  return {
    name: "meco",
    predict: (x) => {
      const seed = deriveSeed(opts.seed, calls++);
      let perturb = models.perturb;
      if (variant === "official") {
        const [, h, w, c] = x.shape;
        perturb = perturbationNet({
          imageShape: [h, w, c],
          width: opts.width ?? 64,
          bound: opts.bound ?? 0.1,
          seed: deriveSeed(seed, 1),
        });
      }
      try {
        return tf.tidy(() => {
          const eps = tf.randomNormal(x.shape, 0, 1, "float32", seed) as tf.Tensor4D;
          const logits = models.target.apply(perturbInput(perturb, x, eps), { training: false });
          return tf.softmax(logits as tf.Tensor2D);
        });
      } finally {
        if (perturb !== models.perturb) perturb.dispose();
      }
    },
    dispose: () => {},
  };
}
