/**
 * Defenses by config entry: the one place that maps `defenses[].type` to an
 * implementation, for the experiment runner (lib/experiments/cells.ts) and for
 * serving (lib/serve) alike. `meco` is built from its defensively trained
 * target and perturbation network, which the caller supplies (trained by
 * lib/meco, cached by the runner, exported in a serving bundle).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { DefenseConfig } from "../config/mod.ts";
import { mulberry32 } from "../data/rng.ts";
import type { Defense } from "./defense.ts";
import { mecoDefense, type MecoModels } from "./meco.ts";
import { outputDefense } from "./output_defense.ts";
import {
  gaussianNoiseRows,
  gradArgmaxRows,
  greedyMassMove,
  highConfRows,
  madRows,
  randpArgmaxRows,
  randpRows,
  reverseSigmoidRows,
  roundRows,
  top1Rows,
} from "./output_math.ts";
import { buildSurrogate, DenseHead, fullCoefficients } from "./surrogate.ts";
import { undefended } from "./undefended.ts";

/** What {@linkcode buildDefense} needs besides the config entry and the victim. */
export interface DefenseBuildOptions {
  /** Seed of the defense's randomness (noise streams, surrogate initialisation). */
  seed: number;
  /** Shape [h, w, c] of one image. */
  imageShape: [number, number, number];
  /** Number of classes. */
  numClasses: number;
  /** The victim's architecture name: the surrogate's default for `mad` and `grad`. */
  arch?: string;
  /**
   * `meco` only, and required there: the defensively trained target T and
   * perturbation network h, which answer in place of the victim.
   */
  meco?: MecoModels;
}

/**
 * Builds the defense `cfg` around `victim` (a model outputting logits), named
 * by the entry's `name` (default: its type; `none` is "undefended"). Each
 * defense's `predict` takes images in [-1, 1] and returns probabilities;
 * surrogate-based defenses (`mad`, `grad`) own and dispose their surrogate, and
 * no defense disposes the victim. `meco` answers with `opts.meco`'s target
 * behind its perturbation network (the entry's `variant`, `width` and `bound`;
 * a fresh ε per query from the stream of `opts.seed`), and disposes neither.
 *
 * @throws {Error} for `meco` without `opts.meco`, and for `mad` or `grad`
 * without a surrogate architecture (`surrogate_arch` or `opts.arch`)
 *
 * @example
 * ```ts ignore
 * const d = buildDefense({ type: "randp", eps: 1 }, victim, { seed: 0, imageShape: [28, 28, 1], numClasses: 10 });
 * const p = d.predict(x); // [n, 10] probabilities
 * // MeCo: its entry (variant, width, bound) around its trained target and h
 * const opts = { seed: 0, imageShape: [28, 28, 1] as [number, number, number], numClasses: 10 };
 * const m = buildDefense(mecoEntry, victim, { ...opts, meco: { target, perturb } });
 * ```
 */
export function buildDefense(cfg: DefenseConfig, victim: tf.LayersModel, opts: DefenseBuildOptions): Defense {
  const name = cfg.name ?? (cfg.type === "none" ? "undefended" : cfg.type);
  const rng = mulberry32(opts.seed);
  switch (cfg.type) {
    case "none":
      return undefended(victim, name);
    case "meco":
      if (opts.meco === undefined) {
        throw new Error(
          `defense '${name}': 'meco' needs its defensively trained target and perturbation network (opts.meco); ` +
            "train them with lib/meco (trainMeco) or let the experiment runner train and cache them",
        );
      }
      return mecoDefense(
        opts.meco,
        { seed: opts.seed, variant: cfg.variant, width: cfg.width, bound: cfg.bound },
        name,
      );
    case "randp":
      return outputDefense(
        name,
        victim,
        cfg.argmax_preserving ? (y, k) => randpArgmaxRows(y, k, cfg.eps, rng) : (y, k) => randpRows(y, k, cfg.eps, rng),
      );
    case "reverse_sigmoid":
      return outputDefense(name, victim, (y, k) => reverseSigmoidRows(y, k, cfg.beta, cfg.gamma));
    case "high_conf_cutoff":
      return outputDefense(name, victim, (y, k) => highConfRows(y, k, cfg.threshold));
    case "rounding":
      return outputDefense(name, victim, (y, k) => roundRows(y, k, cfg.decimals));
    case "top1":
      return outputDefense(name, victim, (y, k) => top1Rows(y, k));
    case "gaussian_noise":
      return outputDefense(name, victim, (y, k) => gaussianNoiseRows(y, k, cfg.std, rng));
    case "mad": {
      const surrogate = buildSurrogate(surrogateSpec(cfg, opts), victim);
      return outputDefense(name, victim, (y, k, x) => {
        const ps = tf.tidy(() => tf.softmax(surrogate.apply(x, { training: false }) as tf.Tensor2D));
        try {
          return madRows(y, ps.dataSync(), k, cfg.eps, cfg.argmax_preserving);
        } finally {
          ps.dispose();
        }
      }, [surrogate]);
    }
    case "grad": {
      const surrogate = buildSurrogate(surrogateSpec(cfg, opts), victim);
      let coefficients: (x: tf.Tensor4D, y: tf.Tensor2D) => tf.Tensor2D;
      if (cfg.scope === "full") coefficients = (x, y) => fullCoefficients(surrogate, x, y);
      else {
        try {
          const head = new DenseHead(surrogate);
          coefficients = (x, y) => head.coefficients(x, y);
        } catch (e) {
          surrogate.dispose();
          throw e;
        }
      }
      return outputDefense(name, victim, (y, k, x) => {
        const c = tf.tidy(() => coefficients(x, tf.tensor2d(y, [y.length / k, k])));
        try {
          return cfg.argmax_preserving
            ? gradArgmaxRows(y, c.dataSync(), k, cfg.eps)
            : greedyMassMove(y, c.dataSync(), k, cfg.eps);
        } finally {
          c.dispose();
        }
      }, [surrogate]);
    }
    default: {
      const never: never = cfg;
      throw new Error(`defense type '${(never as { type: string }).type}' is not available in this build`);
    }
  }
}

function surrogateSpec(
  cfg: { type: string; surrogate_arch?: string; surrogate_init: "random" | "victim" },
  opts: DefenseBuildOptions,
) {
  const arch = cfg.surrogate_arch ?? opts.arch;
  if (arch === undefined) {
    throw new Error(
      `defense '${cfg.type}': surrogate_arch is not set and the victim's architecture was not given (opts.arch)`,
    );
  }
  return { arch, init: cfg.surrogate_init, seed: opts.seed, imageShape: opts.imageShape, numClasses: opts.numClasses };
}
