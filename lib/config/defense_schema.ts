/**
 * Schema of the `defenses` list: every defense the experiment evaluates, discriminated by `type`.
 *
 * Input-side defenses change the victim or its inputs (`meco`); output-side defenses post-process
 * the probability vector the black box returns (`randp`, `mad`, `grad`, `reverse_sigmoid`,
 * `high_conf_cutoff`, `rounding`, `top1`, `gaussian_noise`). `none` is the undefended baseline.
 * Every entry may carry a `name` label; labels (defaulting to `type`) must be unique.
 *
 * @module
 */
import { z } from "zod";
import { ArchSchema, entryLabel, nonNegative, nonNegativeInt, positive, positiveInt, unitInterval } from "./fields.ts";

const base = { name: entryLabel.optional() };

/** `type: none` — the undefended victim. */
export const NoDefenseSchema = z.object({ ...base, type: z.literal("none") })
  .strict();

/**
 * `type: meco` — MeCo (Wang et al., NeurIPS 2023): the victim is trained jointly with a
 * data-dependent random input perturbation h(x, ε) under distributionally robust optimisation.
 *
 * - `gamma`: weight of the L1 utility term (keeps benign outputs close to the clean ones);
 * - `q`: SVGD steps simulating the worst-case query distribution (Eq. 11); `0` is the no-DRO ablation;
 * - `alpha`: SVGD step size, the RMS displacement per pixel of one step in image units ([−1, 1]):
 *   Eq. 11's direction with its rate set per step to α/RMS(φ) (the literal rate moved images by
 *   ~2e-6 per pixel); `sigma`: RBF kernel bandwidth, a number or `median` (median heuristic);
 * - `bound`: L∞ bound of the perturbation; `width`: filters of the perturbation network;
 * - `epochs`, `batch_size`, `lr`: defensive training (Alg. 1);
 * - `variant`: `paper` follows the paper's Algorithm 1; `official` the authors' released code
 *   (joey-wang123/DFME-DRO, see lib/meco/official.ts), with the fields read as that code's
 *   arguments: `gamma` its `--gamma` (0.2, the transport penalty of the inner step), `q` its
 *   `--T_step` (1), `alpha` its `--stepsize` (1e-4, the literal rate), `width` its `hidden_planes`
 *   (2), `bound` its deployment `--scale` (in its normalised-input units), `sigma` ignored (its own
 *   0.05·median rule), training from scratch (`init: scratch`) with Adam (`lr` 1e-3, `batch_size` 64,
 *   49 MNIST epochs).
 */
export const MecoDefenseSchema = z.object({
  ...base,
  type: z.literal("meco"),
  gamma: nonNegative,
  q: nonNegativeInt,
  alpha: positive,
  sigma: z.union([positive, z.literal("median")]).default("median"),
  bound: positive,
  width: positiveInt.default(64),
  epochs: positiveInt,
  batch_size: positiveInt,
  lr: positive,
  variant: z.enum(["paper", "official"]).default("paper"),
  /** Train on a seeded subset of this many training images (default: the whole training split). */
  train_subset: positiveInt.optional(),
  /** Start the defended target from the trained undefended victim, or from scratch. */
  init: z.enum(["pretrained", "scratch"]).default("pretrained"),
}).strict();

/**
 * Whether an output perturbation keeps the top-1 class: `true` (the default, as the MeCo paper
 * evaluates RandP, P-poison and GRAD: their accuracy stays within half a point of the undefended
 * victim at L1 budget 1.0) or `false` (the argmax-flipping form, which at budget 1.0 changes the
 * top-1 of most confident answers).
 */
const argmaxPreserving = z.boolean().default(true);

/**
 * `type: randp` — RandP, a random perturbation of the answer within L1 `eps`. By default
 * (`argmax_preserving: true`) the answer moves toward a random distribution whose top-1 is the
 * answer's, by L1 `eps` wherever the top-1 allows; with `argmax_preserving: false` a random class
 * other than the top-1 receives `eps`/2 of probability mass taken from the top-1 class.
 */
export const RandPDefenseSchema = z.object({
  ...base,
  type: z.literal("randp"),
  eps: positive,
  argmax_preserving: argmaxPreserving,
})
  .strict();

/**
 * `type: mad` — Prediction Poisoning / MAD (Orekondy et al., ICLR 2020): perturb the output within
 * an L1 ball of radius `eps` to maximise the angular deviation of the attacker's gradient;
 * `argmax_preserving` (default `true`) uses the reference's argmax-preserving oracle (targets
 * uniform over class sets containing the top-1), `false` its one-hot oracle, which may change the
 * top-1; `surrogate_arch` is the defender's stand-in for the attacker's clone (default: the
 * victim's architecture).
 */
export const MadDefenseSchema = z.object({
  ...base,
  type: z.literal("mad"),
  eps: positive,
  argmax_preserving: argmaxPreserving,
  surrogate_arch: ArchSchema.optional(),
  /**
   * `random`: a freshly initialised surrogate (the reference); `victim`: a copy of the victim (whose NLL
   * gradient at the victim's own answer is zero, so only useful as a control).
   */
  surrogate_init: z.enum(["random", "victim"]).default("random"),
}).strict();

/**
 * `type: grad` — GRAD² gradient redirection (Mazeika et al., 2022): perturb outputs within an L1
 * budget `eps` so that the surrogate's gradient on the answer points against its gradient on the
 * true output (computed over the surrogate's fully connected head); `surrogate_arch` as for `mad`.
 * `argmax_preserving` (default `true`) restricts the answer to distributions with the same top-1
 * and uses the whole budget wherever the top-1 allows; `false` solves the unrestricted linear
 * program, which may change the top-1.
 */
export const GradDefenseSchema = z.object({
  ...base,
  type: z.literal("grad"),
  eps: positive,
  argmax_preserving: argmaxPreserving,
  surrogate_arch: ArchSchema.optional(),
  /** As for `mad`. */
  surrogate_init: z.enum(["random", "victim"]).default("random"),
  /**
   * Parameters whose per-sample gradients are redirected: `head` (the fully connected layers, exact and
   * batched) or `full` (every parameter; K backward passes per query image, as a per-sample Jacobian).
   */
  scope: z.enum(["head", "full"]).default("head"),
}).strict();

/** `type: reverse_sigmoid` — Lee et al. (2019): output perturbation with strength `beta`, slope `gamma`. */
export const ReverseSigmoidDefenseSchema = z.object({
  ...base,
  type: z.literal("reverse_sigmoid"),
  beta: positive,
  gamma: positive,
}).strict();

/**
 * `type: high_conf_cutoff` — IBM ART's high-confidence postprocessor: probabilities below `threshold`
 * are zeroed (the top-1 is always kept) and the vector renormalised.
 */
export const HighConfCutoffDefenseSchema = z.object({
  ...base,
  type: z.literal("high_conf_cutoff"),
  threshold: unitInterval,
}).strict();

/** `type: rounding` — round probabilities to `decimals` decimal places. */
export const RoundingDefenseSchema = z.object({
  ...base,
  type: z.literal("rounding"),
  decimals: nonNegativeInt.max(16),
}).strict();

/** `type: top1` — return only the arg-max label (one-hot). */
export const Top1DefenseSchema = z.object({ ...base, type: z.literal("top1") })
  .strict();

/** `type: gaussian_noise` — add N(0, `std`²) noise to the probabilities and renormalise. */
export const GaussianNoiseDefenseSchema = z.object({
  ...base,
  type: z.literal("gaussian_noise"),
  std: positive,
}).strict();

/**
 * `type: meco` when serving (lib/serve): the defensively trained target and perturbation network
 * come from the model bundle, exported together with their training entry (whose `variant`,
 * `width` and `bound` deploy them), so an entry sets no field of {@linkcode MecoDefenseSchema}
 * but its `name` label.
 */
export const ServeMecoDefenseSchema = MecoDefenseSchema.pick({ name: true, type: true });

/**
 * The union of every defense type's entry schema, discriminated by `type`, with `meco`'s
 * given: {@linkcode MecoDefenseSchema} in an experiment config, {@linkcode ServeMecoDefenseSchema}
 * when serving. The list of defenses is written here only.
 */
function defenseUnion<M extends typeof MecoDefenseSchema | typeof ServeMecoDefenseSchema>(meco: M) {
  return z.discriminatedUnion("type", [
    NoDefenseSchema,
    meco,
    RandPDefenseSchema,
    MadDefenseSchema,
    GradDefenseSchema,
    ReverseSigmoidDefenseSchema,
    HighConfCutoffDefenseSchema,
    RoundingDefenseSchema,
    Top1DefenseSchema,
    GaussianNoiseDefenseSchema,
  ]);
}

/** One entry of `defenses:`, discriminated by `type`. */
export const DefenseSchema = defenseUnion(MecoDefenseSchema);

/**
 * The defense a server puts in front of its bundle (`defense:` of `configs/serve.yaml`, each
 * of `defenses:` in a load-test config): any type of {@linkcode DefenseSchema} with the same
 * fields, except that `meco` sets only its `name` ({@linkcode ServeMecoDefenseSchema}).
 */
export const ServeDefenseSchema = defenseUnion(ServeMecoDefenseSchema);

/** A validated defense entry. */
export type DefenseConfig = z.infer<typeof DefenseSchema>;
/** The `type` of a defense entry. */
export type DefenseType = DefenseConfig["type"];
/** The validated entry of one defense type, e.g. `DefenseOf<"meco">`. */
export type DefenseOf<T extends DefenseType> = Extract<
  DefenseConfig,
  { type: T }
>;
/** A validated `type: meco` entry. */
export type MecoDefenseConfig = DefenseOf<"meco">;
/** A validated serving defense entry. */
export type ServeDefenseConfig = z.infer<typeof ServeDefenseSchema>;
