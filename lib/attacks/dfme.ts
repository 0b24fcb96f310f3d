/**
 * DFME — Data-Free Model Extraction (Truong et al., CVPR 2021), as the
 * reference implementation and the PyTorch peer benchmark's `dfme_iteration`
 * define it.
 *
 * One iteration ({@linkcode dfmeIteration}):
 * 1. `g_iter` generator steps. The generator G maps z ~ N(0, I) to pre-tanh
 *    images `pre`; queries are `tanh(pre)`. The victim is a black box, so the
 *    gradient of the per-sample loss ℓ(x) = −mean_k |clone(x) − target(x)|
 *    with respect to `pre` is estimated by forward differences along `m`
 *    random unit directions u in pre-tanh space with step `eps`:
 *    ĝ = mean_u dim · (ℓ(tanh(pre + eps·u)) − ℓ(tanh(pre))) / eps · u / (k · n).
 *    The generator's parameters then get the vector-Jacobian product of ĝ
 *    (the gradient of sum(pre · ĝ) with ĝ held constant) and an Adam step:
 *    G learns to make the clone and the victim disagree.
 * 2. `d_iter` clone steps on fresh batches x = tanh(G(z)) (no generator
 *    gradient): the clone's logits regress the victim's target(x) with the L1
 *    loss (SGD, momentum, weight decay).
 *
 * Both learning rates decay by `lr_gamma` at the `lr_decay_at` milestones
 * ({@linkcode dfmeLearningRate}: fractions of the budget, or the reference's
 * epochs of 50 iterations). {@linkcode dfmeDiagnostics} measures, outside the
 * attack, how well the estimate matches the true generator gradient.
 *
 * target(x) = log p − mean_k log p of the victim's probabilities p (clamped
 * at `p_floor`, absent 1e-30, before the log): mean-corrected
 * log-probabilities, the reference's logit recovery. Queries per iteration: `batch_size · (g_iter·(m+1) + d_iter)`,
 * every one through the black box, which counts them: the estimate's through
 * `blackBox.queryForEstimation`, the clone's through `blackBox.query`. On a
 * real black box both are answered by the defense; under the official MeCo
 * evaluation protocol (`estimation: undefended`, which the runner sets up
 * when building the black box) the estimate's are answered by the undefended
 * target.
 *
 * Hard labels (`label: hard`, the black box answers top-1 classes only): the
 * same loop with target(x) = gap · (onehot(y) − 1/k), which is exactly
 * log p − mean_k log p for the distribution p ∝ exp(gap · onehot(y)), i.e. a
 * victim that puts e^gap times more mass on its label than on any other class.
 * The default gap is ln 10⁴ ≈ 9.21 ({@linkcode DEFAULT_HARD_LABEL_GAP}): on the
 * scale of a confident victim's mean-corrected log-probabilities, so the soft
 * settings (learning rates, L1 loss) carry over. With `loss: kl` the hard
 * target is the one-hot distribution itself.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type DfmeAttackConfig, DfmeAttackSchema } from "../config/attack_schema.ts";
import { deriveSeed, seedSequence } from "../data/rng.ts";
import type { Defense } from "../defenses/defense.ts";
import { dfmeGenerator } from "../models/dfme_generator.ts";
import { saveModel } from "../train/checkpoint.ts";
import { KL_DIVERGENCE, L1_LOSS } from "../train/losses.ts";
import { makeOptimizer, stepLr, TorchAdam } from "../train/optim.ts";
import { makeTrainer, type Trainer } from "../train/trainer.ts";
import { BlackBox } from "../victim/black_box.ts";
import { detach } from "../victim/detach.ts";
import type { Attack, AttackContext, AttackResult, CurvePoint } from "./attack.ts";
import { type CheckpointMeta, loadOptimizerState, saveOptimizerState, trainingSettingsKey } from "./checkpoint.ts";
import { type CloneFactory, cloneFactory } from "./clone.ts";
import { checkBudget, copyWeightsFrom, type IterativeRun, type LoopCheckpointMeta, runAttackLoop } from "./loop.ts";

/** DFME's settings: a `type: dfme` config entry, defaults applied, without `type`, `name`, `budget`. */
export type DfmeSettings = Omit<DfmeAttackConfig, "type" | "name" | "budget">;

/** A partial `type: dfme` entry; missing fields take the schema's defaults. */
export type DfmeConfigInput = Partial<Omit<DfmeAttackConfig, "type">>;

/** The hard-label target's logit gap, ln 10⁴ (see the module documentation). */
export const DEFAULT_HARD_LABEL_GAP: number = Math.log(1e4);

/** Probabilities are clamped at this before the log, as in the reference (absent `p_floor`). */
const P_FLOOR = 1e-30;

/**
 * Resolves a partial DFME config with the schema's defaults (and checks it).
 *
 * @example
 * ```ts
 * import { dfmeSettings } from "./dfme.ts";
 * const s = dfmeSettings({ batch_size: 64, gen_width: 8 }); // m = 1, d_iter = 5, ...
 * ```
 */
export function dfmeSettings(config: DfmeConfigInput = {}): DfmeSettings {
  const parsed = DfmeAttackSchema.parse({ clone_arch: "lenet5", budget: 1, ...config, type: "dfme" });
  const { type: _type, name: _name, budget: _budget, ...settings } = parsed;
  return settings;
}

/** Black-box queries one {@linkcode dfmeIteration} spends: `batch_size · (g_iter·(m+1) + d_iter)`. */
export function dfmeQueriesPerIteration(s: Pick<DfmeSettings, "batch_size" | "g_iter" | "m" | "d_iter">): number {
  return s.batch_size * (s.g_iter * (s.m + 1) + s.d_iter);
}

/** Iterations per "epoch" of the `epochs` learning-rate schedule when `epoch_itrs` is absent (the reference's). */
export const DEFAULT_EPOCH_ITRS = 50;

/**
 * The learning rate `lr` (the generator's or the clone's) after the schedule's
 * decays at iteration `iteration` (0-based) of a run with query budget `budget`.
 *
 * - `lr_schedule: budget` (or absent): × `lr_gamma` once the iteration reaches
 *   each fraction `lr_decay_at` of the iterations the budget allows.
 * - `lr_schedule: epochs`: the reference's MultiStepLR, stepped once at the
 *   start of every epoch of `epoch_itrs` iterations: with
 *   E = ⌊budget / (epoch_itrs · queries per iteration)⌋ + 1 epochs and
 *   milestones ⌊f · E⌋, iteration i lies in epoch e = ⌊i / epoch_itrs⌋ + 1 and
 *   gets `lr_gamma` to the number of milestones ≤ e (a milestone 0 counts from
 *   the start, as PyTorch's scheduler applies it at construction). At the
 *   defaults and 2M queries (1792 per iteration, 89,600 per epoch, E = 23,
 *   milestones 2, 6, 11) the decays fall at 89,600, 448,000 and 896,000 queries.
 *
 * @example
 * ```ts
 * import { dfmeLearningRate, dfmeSettings } from "./dfme.ts";
 * const s = dfmeSettings({ lr_schedule: "epochs" });
 * dfmeLearningRate(0.1, s, 2_000_000, 50); // 0.03: iteration 50 starts epoch 2
 * ```
 */
export function dfmeLearningRate(
  lr: number,
  s: Pick<
    DfmeSettings,
    "batch_size" | "g_iter" | "m" | "d_iter" | "lr_decay_at" | "lr_gamma" | "lr_schedule" | "epoch_itrs"
  >,
  budget: number,
  iteration: number,
): number {
  const perIteration = dfmeQueriesPerIteration(s);
  if (s.lr_schedule === "epochs") {
    const epochItrs = s.epoch_itrs ?? DEFAULT_EPOCH_ITRS;
    const epochs = Math.floor(budget / (epochItrs * perIteration)) + 1;
    const epoch = Math.floor(iteration / epochItrs) + 1;
    return s.lr_decay_at.reduce((acc, f) => (Math.floor(f * epochs) <= epoch ? acc * s.lr_gamma : acc), lr);
  }
  const totalIterations = Math.floor(budget / perIteration);
  return stepLr(lr, iteration / Math.max(1, totalIterations), s.lr_decay_at, s.lr_gamma);
}

/** Models and knobs that are not part of the config. */
export interface DfmeModelOptions {
  /** Builds the clone from a seed; default from `clone_arch` ({@linkcode cloneFactory}). */
  makeClone?: CloneFactory;
  /** Builds the generator (pre-tanh output); default {@linkcode dfmeGenerator} with `nz`, `gen_width`. */
  makeGenerator?: (seed: number) => tf.LayersModel;
  /** Logit gap of hard-label targets (default {@linkcode DEFAULT_HARD_LABEL_GAP}). */
  hardLabelGap?: number;
  /** Applied to every generated batch before it is queried (and shown to the clone); none by default. */
  queryTransform?: QueryTransform;
  /**
   * When given, every evaluation point of the curve also records {@linkcode dfmeDiagnostics} (outside the
   * attack and its query count): `oracle` answers as the black box does, `victim` is the undefended model.
   */
  diagnostics?: { oracle: Defense; estimationOracle?: Defense; victim: tf.LayersModel };
}

/**
 * Maps generated images [n, h, w, c] to the images actually queried (the
 * adaptive attacker's own random perturbation). Consecutive blocks of `group`
 * images are variants of one sample (the zeroth-order estimate's directions)
 * and should share the random draw; `seed` fixes the draw.
 */
export type QueryTransform = (x: tf.Tensor4D, group: number, seed: number) => tf.Tensor4D;

/** Everything one DFME run carries from iteration to iteration. */
export interface DfmeState {
  /** The run's settings. */
  readonly settings: DfmeSettings;
  /** The victim, as the attack sees it. */
  readonly blackBox: BlackBox;
  /** The generator (pre-tanh output). */
  readonly generator: tf.LayersModel;
  /** The clone (logits). */
  readonly clone: tf.LayersModel;
  /** The generator's Adam (PyTorch semantics). */
  readonly generatorOptimizer: TorchAdam;
  /** The clone's SGD (momentum, coupled weight decay) and its learning-rate setter. */
  readonly cloneOptimizer: { optimizer: tf.Optimizer; setLr: (lr: number) => void };
  /** The run's seed; draws of iteration i use `deriveSeed(seed, i, k)`, k = 0, 1, ... */
  readonly seed: number;
  /** The run's query budget. */
  readonly budget: number;
  /** Iterations the budget allows; the learning-rate schedule runs over them. */
  readonly totalIterations: number;
  /** Logit gap of hard-label targets. */
  readonly hardLabelGap: number;
  /** Transform of generated batches before they are queried, if any. */
  readonly queryTransform?: QueryTransform;
  /** Iterations done. */
  iteration: number;
  /** The clone's training step with the settings' loss (L1 to logit-like targets, or KL to probabilities). */
  readonly cloneTrainer: Trainer<tf.Tensor2D>;
}

/** Options for {@linkcode createDfmeState}. */
export interface DfmeStateOptions extends DfmeModelOptions {
  /** The black box to attack. */
  blackBox: BlackBox;
  /** The run's query budget (sets the iteration count and the learning-rate schedule). */
  budget: number;
  /** The run's seed. */
  seed: number;
  /** DFME settings (see {@linkcode dfmeSettings}). */
  settings: DfmeSettings;
}

/** Salt of the side batches' seeds of {@linkcode dfmeDiagnostics} in a run (apart from the attack's own draws). */
const DIAGNOSTICS_SALT = 0x64696167;

/** Seeds of the clone's and the generator's initialisation, derived from the run's seed. */
const INIT_SALT = { clone: 0x636c6f6e, generator: 0x67656e } as const;

/**
 * A fresh DFME run: clone and generator initialised from the seed, optimizers
 * with the settings' learning rates, iteration 0. Free it with
 * {@linkcode disposeDfmeState}.
 */
export function createDfmeState(opts: DfmeStateOptions): DfmeState {
  const { blackBox: bb, settings: s } = opts;
  const makeClone = opts.makeClone ?? cloneFactory(s.clone_arch, bb.imageShape, bb.numClasses);
  const makeGenerator = opts.makeGenerator ??
    ((seed: number) =>
      dfmeGenerator({
        seed,
        nz: s.nz,
        width: s.gen_width,
        imageShape: [...bb.imageShape] as [number, number, number],
        outputBn: s.gen_output_bn,
      }));
  const clone = makeClone(deriveSeed(opts.seed, INIT_SALT.clone));
  const generator = makeGenerator(deriveSeed(opts.seed, INIT_SALT.generator));
  const cloneOptimizer = makeOptimizer({
    optimizer: "sgd",
    lr: s.clone_lr,
    momentum: s.clone_momentum,
    weightDecay: s.clone_wd,
  });
  return {
    settings: s,
    blackBox: bb,
    generator,
    clone,
    generatorOptimizer: new TorchAdam(s.gen_lr),
    cloneOptimizer,
    cloneTrainer: makeTrainer(clone, cloneOptimizer.optimizer, s.loss === "l1" ? L1_LOSS : KL_DIVERGENCE),
    seed: opts.seed,
    budget: opts.budget,
    totalIterations: Math.floor(opts.budget / dfmeQueriesPerIteration(s)),
    hardLabelGap: opts.hardLabelGap ?? DEFAULT_HARD_LABEL_GAP,
    queryTransform: opts.queryTransform,
    iteration: 0,
  };
}

/** Frees a run's generator, optimizers and (unless `keepClone`) clone. */
export function disposeDfmeState(state: DfmeState, opts: { keepClone?: boolean } = {}): void {
  state.generator.dispose();
  state.generatorOptimizer.dispose();
  state.cloneOptimizer.optimizer.dispose(); // TorchSGD also frees the learning-rate scalar
  state.cloneTrainer.dispose();
  if (!opts.keepClone) state.clone.dispose();
}

/**
 * What the clone is trained towards for the black box's answer on `x`
 * (queries `x.shape[0]` images): for the L1 loss, logit-like targets [n, k];
 * for KL, probabilities [n, k]. `estimation`: the queries of the
 * zeroth-order estimate, which `BlackBox.queryForEstimation` answers (the
 * defended oracle, or the undefended target under the official protocol).
 */
export function victimTarget(state: DfmeState, x: tf.Tensor4D, estimation = false): tf.Tensor2D {
  return tf.tidy(() => {
    const bb = state.blackBox;
    const k = bb.numClasses;
    const answer = estimation ? bb.queryForEstimation(x) : bb.query(x);
    if (bb.labels === "hard") {
      const onehot = tf.oneHot(answer as tf.Tensor1D, k).toFloat() as tf.Tensor2D;
      return state.settings.loss === "kl" ? onehot : tf.mul(tf.sub(onehot, 1 / k), state.hardLabelGap);
    }
    const p = answer as tf.Tensor2D;
    if (state.settings.loss === "kl") return p;
    const logp = tf.log(tf.maximum(p, state.settings.p_floor ?? P_FLOOR));
    return tf.sub(logp, tf.mean(logp, 1, true));
  });
}

/** Per-sample disagreement [n] between clone logits and targets: mean_k |l − t| (L1) or mean_k KL terms. */
function disagreement(s: DfmeSettings, logits: tf.Tensor2D, target: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    if (s.loss === "l1") return tf.mean(tf.abs(tf.sub(logits, target)), 1);
    const logp = tf.log(tf.maximum(target, s.p_floor ?? P_FLOOR));
    return tf.mean(tf.mul(target, tf.sub(logp, tf.logSoftmax(logits))), 1);
  });
}

/**
 * The forward-difference estimate of d(per-sample loss)/d(pre) for the
 * pre-tanh batch `pre` [n, h, w, c], with its `m` random unit directions drawn
 * from `seed`. Queries the black box on n·(m+1) images (one call). Also
 * returns the mean loss at the unperturbed points.
 */
export function zerothOrderGradient(
  state: DfmeState,
  pre: tf.Tensor4D,
  seed: number,
): { gradient: tf.Tensor4D; loss: tf.Scalar } {
  return tf.tidy(() => {
    const { m, eps } = state.settings;
    const k = state.blackBox.numClasses;
    const [n, h, w, c] = pre.shape;
    const dim = h * w * c;
    const raw = tf.randomNormal([n, m, dim], 0, 1, "float32", seed);
    const u = tf.div(raw, tf.norm(raw, "euclidean", 2, true));
    const flat = tf.reshape(pre, [n, 1, dim]);
    // Per sample: its m perturbed points, then the point itself.
    const points = tf.concat([tf.add(flat, tf.mul(u, eps)), flat], 1);
    const generated = tf.tanh(tf.reshape(points, [n * (m + 1), h, w, c])) as tf.Tensor4D;
    const x = state.queryTransform ? state.queryTransform(generated, m + 1, deriveSeed(seed, 1)) : generated;
    const target = victimTarget(state, x, true);
    const logits = state.clone.apply(x, { training: false }) as tf.Tensor2D;
    const perSample = tf.reshape(tf.neg(disagreement(state.settings, logits, target)), [n, m + 1]);
    const base = tf.slice(perSample, [0, m], [n, 1]);
    const diff = tf.reshape(tf.div(tf.sub(tf.slice(perSample, [0, 0], [n, m]), base), eps), [n, m, 1]);
    const gradient = tf.div(tf.mean(tf.mul(tf.mul(diff, dim), u), 1), k * n);
    return { gradient: tf.reshape(gradient, pre.shape) as tf.Tensor4D, loss: tf.mean(base) as tf.Scalar };
  });
}

/** What {@linkcode dfmeDiagnostics} measures on one side batch. */
export interface DfmeDiagnostics {
  /**
   * Cosine between the generator-parameter gradient the attack would step on (the vector-Jacobian product of
   * the zeroth-order estimate from the oracle's answers) and the true one (the same product of the exact
   * gradient of the per-sample loss, computed through the undefended victim's logits).
   */
  estimateCosine: number;
  /** The same cosine at the pre-tanh images, all samples as one vector. */
  imageCosine: number;
  /** Fraction of the side batch's generated images whose top-1 class the oracle answers differently from the victim. */
  top1Changed: number;
}

/**
 * Diagnostics of a DFME run, outside the attack and its query count: on a side
 * batch of `state.settings.batch_size` latents drawn from `seed`, the cosine
 * between the estimated and the true generator gradient, and how often the
 * oracle's top-1 differs from the undefended victim's. `oracle` answers what
 * the black box would (the defended model, or the undefended one), and
 * `estimationOracle`, when given, the estimate's queries (the official MeCo
 * protocol: the target without its perturbation); `victim` is the model
 * behind the defense (logits), whose internals give the true gradient. The
 * true loss uses the victim's own mean-corrected log-probabilities as targets,
 * so a defense that perturbs answers lowers the cosine. Neither the attack's
 * black box nor its models or optimizers change (the generator's BatchNorm
 * moving statistics are restored).
 *
 * @example
 * ```ts ignore
 * const d = dfmeDiagnostics(state, { oracle: defense, victim, seed: 7 });
 * console.log(d.estimateCosine, d.top1Changed);
 * ```
 */
export function dfmeDiagnostics(
  state: DfmeState,
  opts: { oracle: Defense; estimationOracle?: Defense; victim: tf.LayersModel; seed: number },
): DfmeDiagnostics {
  const s = state.settings;
  const bb = state.blackBox;
  const side = new BlackBox(opts.oracle, {
    imageShape: bb.imageShape,
    numClasses: bb.numClasses,
    budget: Number.MAX_SAFE_INTEGER,
    labels: bb.labels,
    ...(opts.estimationOracle !== undefined ? { estimationOracle: opts.estimationOracle } : {}),
  });
  const sideState: DfmeState = { ...state, blackBox: side };
  const k = bb.numClasses;
  const frozen = state.generator.nonTrainableWeights.map((w) => [w, w.read().clone()] as const);
  const vars = state.generator.trainableWeights.map((w) => w.read() as tf.Variable);
  try {
    return tf.tidy(() => {
      const z = tf.randomNormal([s.batch_size, s.nz], 0, 1, "float32", deriveSeed(opts.seed, 0));
      const pre = detach(state.generator.apply(z, { training: true }) as tf.Tensor4D);
      const n = pre.shape[0];
      const estimate = zerothOrderGradient(sideState, pre, deriveSeed(opts.seed, 1)).gradient;
      const exact = tf.grad((p: tf.Tensor) => {
        const x = tf.tanh(p) as tf.Tensor4D;
        const logits = opts.victim.apply(x, { training: false }) as tf.Tensor2D;
        let target: tf.Tensor2D;
        if (s.loss === "kl") target = tf.softmax(logits);
        else {
          const logp = tf.logSoftmax(logits);
          target = tf.sub(logp, tf.mean(logp, 1, true));
        }
        const clone = state.clone.apply(x, { training: false }) as tf.Tensor2D;
        return tf.div(tf.neg(tf.sum(disagreement(s, clone, target))), k * n);
      })(pre);
      const vjp = (g: tf.Tensor4D) => {
        const { value, grads } = tf.variableGrads(
          () => tf.sum(tf.mul(state.generator.apply(z, { training: true }) as tf.Tensor4D, g)),
          vars,
        );
        value.dispose();
        return tf.concat(vars.map((v) => grads[v.name].flatten()));
      };
      const cosine = (a: tf.Tensor, b: tf.Tensor) =>
        tf.div(tf.sum(tf.mul(a, b)), tf.add(tf.mul(tf.norm(a), tf.norm(b)), 1e-30)).dataSync()[0];
      const x = tf.tanh(pre) as tf.Tensor4D;
      const answered = tf.argMax(opts.oracle.predict(x), 1);
      const truth = tf.argMax(opts.victim.apply(x, { training: false }) as tf.Tensor2D, 1);
      return {
        estimateCosine: cosine(vjp(estimate), vjp(exact as tf.Tensor4D)),
        imageCosine: cosine(estimate, exact),
        top1Changed: tf.mean(tf.notEqual(answered, truth).toFloat()).dataSync()[0],
      };
    });
  } finally {
    for (const [w, value] of frozen) {
      w.write(value);
      value.dispose();
    }
  }
}

/** Losses of one {@linkcode dfmeIteration}. */
export interface DfmeIterationStats {
  /** Mean per-sample generator loss (−disagreement) at the last generator step's unperturbed points. */
  generatorLoss: number;
  /** The last clone step's loss. */
  cloneLoss: number;
}

/**
 * One DFME iteration on `state`: `g_iter` generator steps, then `d_iter`
 * clone steps (see the module documentation); advances `state.iteration`.
 * Spends exactly {@linkcode dfmeQueriesPerIteration} queries; keeps no
 * tensors beyond the models' and optimizers' own.
 *
 * @example
 * ```ts ignore
 * const state = createDfmeState({ blackBox, budget: 2e6, seed: 0, settings: dfmeSettings({ gen_width: 16 }) });
 * while (state.iteration < state.totalIterations) dfmeIteration(state);
 * ```
 */
export function dfmeIteration(state: DfmeState): DfmeIterationStats {
  const s = state.settings;
  const { batch_size: n, nz } = s;
  state.generatorOptimizer.learningRate = dfmeLearningRate(s.gen_lr, s, state.budget, state.iteration);
  state.cloneOptimizer.setLr(dfmeLearningRate(s.clone_lr, s, state.budget, state.iteration));
  const nextSeed = seedSequence(state.seed, state.iteration);

  // 1. Generator: zeroth-order estimate at the pre-tanh output, then its vector-Jacobian product.
  const generatorVars = state.generator.trainableWeights.map((w) => w.read() as tf.Variable);
  let generatorLoss: tf.Scalar | undefined;
  for (let g = 0; g < s.g_iter; g++) {
    generatorLoss?.dispose();
    const zSeed = nextSeed(), uSeed = nextSeed();
    generatorLoss = tf.tidy(() => {
      const z = tf.randomNormal([n, nz], 0, 1, "float32", zSeed);
      let baseLoss: tf.Scalar | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const pre = state.generator.apply(z, { training: true }) as tf.Tensor4D;
        // The estimate is computed on a detached copy: no gradient flows through the clone or the queries.
        const estimate = zerothOrderGradient(state, detach(pre), uSeed);
        baseLoss = tf.keep(estimate.loss);
        return tf.sum(tf.mul(pre, estimate.gradient));
      }, generatorVars);
      state.generatorOptimizer.applyGradients(grads);
      tf.dispose([value, ...Object.values(grads)]);
      return baseLoss!;
    });
  }

  // 2. Clone: d_iter steps of regression onto the victim's targets on fresh generated batches.
  let lastCloneLoss: tf.Scalar | undefined;
  for (let d = 0; d < s.d_iter; d++) {
    lastCloneLoss?.dispose();
    const zSeed = nextSeed();
    lastCloneLoss = tf.tidy(() => {
      const z = tf.randomNormal([n, nz], 0, 1, "float32", zSeed);
      const generated = tf.tanh(state.generator.apply(z, { training: true }) as tf.Tensor4D);
      const x = state.queryTransform ? state.queryTransform(generated, 1, nextSeed()) : generated;
      return state.cloneTrainer.step(x, victimTarget(state, x));
    });
  }
  state.iteration++;
  const stats = {
    generatorLoss: generatorLoss ? generatorLoss.dataSync()[0] : NaN,
    cloneLoss: lastCloneLoss ? lastCloneLoss.dataSync()[0] : NaN,
  };
  tf.dispose([generatorLoss, lastCloneLoss].filter((t): t is tf.Scalar => t !== undefined));
  return stats;
}

/**
 * Writes the state's models and optimizers into the checkpoint stage
 * `stage`: `clone`, `generator`, `clone_optimizer`, `generator_optimizer`
 * (what an {@linkcode IterativeRun} saves; iteration, seed and the curve go
 * to the loop's `meta.json`).
 */
export async function saveDfmeState(state: DfmeState, stage: string): Promise<void> {
  await saveModel(state.clone, `${stage}/clone`);
  await saveModel(state.generator, `${stage}/generator`);
  await saveOptimizerState(`${stage}/clone_optimizer`, state.cloneOptimizer.optimizer);
  await saveOptimizerState(`${stage}/generator_optimizer`, state.generatorOptimizer);
}

/**
 * Reads back into `state` what {@linkcode saveDfmeState} wrote in `dir`.
 *
 * @throws {ResumeError} when the saved weights do not fit the state's models
 */
export async function restoreDfmeState(state: DfmeState, dir: string): Promise<void> {
  await copyWeightsFrom(state.clone, `${dir}/clone`);
  await copyWeightsFrom(state.generator, `${dir}/generator`);
  await loadOptimizerState(`${dir}/clone_optimizer`, state.cloneOptimizer.optimizer);
  await loadOptimizerState(`${dir}/generator_optimizer`, state.generatorOptimizer);
}

/**
 * One DFME run as {@linkcode runAttackLoop} drives it: a {@linkcode DfmeState}
 * (iteration i draws `deriveSeed(seed, i, k)`, so the iteration count is
 * where the random streams stand), one {@linkcode dfmeIteration} per step,
 * and, when `diagnostics` were given, {@linkcode dfmeDiagnostics} at every
 * evaluation point (on a side batch drawn from the run's seed and the
 * iteration, apart from the attack's own draws).
 *
 * @example
 * ```ts ignore
 * const run = new DfmeRun({ blackBox, budget, seed: 0, settings: dfmeSettings({ gen_width: 16 }) });
 * await runAttackLoop(run, blackBox, budget, { seed: 0, evaluate }, { name: "dfme", format: DFME_FORMAT, settings });
 * ```
 */
export class DfmeRun implements IterativeRun {
  /** The run's state. */
  readonly state: DfmeState;
  readonly totalIterations: number;
  readonly queriesPerIteration: number;
  readonly #diagnostics: DfmeModelOptions["diagnostics"];

  /**
   * Builds a fresh run's models and optimizers.
   *
   * @param opts the black box, budget, seed, settings and models (see {@linkcode createDfmeState})
   */
  constructor(opts: DfmeStateOptions) {
    this.state = createDfmeState(opts);
    this.#diagnostics = opts.diagnostics;
    this.totalIterations = this.state.totalIterations;
    this.queriesPerIteration = dfmeQueriesPerIteration(opts.settings);
  }

  get clone(): tf.LayersModel {
    return this.state.clone;
  }
  get iteration(): number {
    return this.state.iteration;
  }
  set iteration(i: number) {
    this.state.iteration = i;
  }

  step(): void {
    dfmeIteration(this.state);
  }

  diagnostics(): Record<string, number> | undefined {
    const d = this.#diagnostics;
    if (d === undefined) return undefined;
    const seed = deriveSeed(this.state.seed, DIAGNOSTICS_SALT, this.state.iteration);
    return { ...dfmeDiagnostics(this.state, { ...d, seed }) };
  }

  async save(stage: string): Promise<void> {
    await saveDfmeState(this.state, stage);
  }

  async restore(dir: string): Promise<void> {
    await restoreDfmeState(this.state, dir);
  }

  dispose(keepClone: boolean): void {
    disposeDfmeState(this.state, { keepClone });
  }
}

/** The checkpoint format of a DFME run: the `meta.json` of {@linkcode runAttackLoop}, the models of {@linkcode saveDfmeState}. */
export const DFME_FORMAT = "dfme/2";

/**
 * The DFME attack.
 *
 * @example
 * ```ts ignore
 * const attack = new DfmeAttack({ gen_width: 16, eval_every: 100_000 });
 * const { clone, curve } = await attack.extract(blackBox, 2_000_000, { seed: 0, evaluate });
 * ```
 */
export class DfmeAttack implements Attack {
  /** "dfme", or the config entry's `name`. */
  readonly name: string;
  /** Resolved settings. */
  readonly settings: DfmeSettings;
  readonly #models: DfmeModelOptions;

  /**
   * Resolves the settings of a (partial) config entry.
   *
   * @param config a (partial) `type: dfme` config entry; its `budget` is ignored (`extract` gets one)
   * @param models clone / generator factories and the hard-label gap
   */
  constructor(config: DfmeConfigInput = {}, models: DfmeModelOptions = {}) {
    this.name = config.name ?? "dfme";
    this.settings = dfmeSettings(config);
    this.#models = models;
  }

  /** Runs DFME against `blackBox` until `budget` queries are spent (or no full iteration fits). */
  async extract(blackBox: BlackBox, budget: number, ctx: AttackContext): Promise<AttackResult> {
    checkBudget(this.name, budget);
    const run = new DfmeRun({ ...this.#models, blackBox, budget, seed: ctx.seed, settings: this.settings });
    return await runAttackLoop(run, blackBox, budget, ctx, {
      name: this.name,
      format: DFME_FORMAT,
      settings: this.settings,
      evalEvery: this.settings.eval_every,
      checkpointEvery: this.settings.checkpoint_every,
      migrate: migrateDfmeMeta,
    });
  }
}

/**
 * The meta of a `dfme/1` checkpoint (DFME's own loop: the same state files, the settings as an object) in the
 * loop's format; undefined for any other format.
 */
export function migrateDfmeMeta(meta: CheckpointMeta & Record<string, unknown>): LoopCheckpointMeta | undefined {
  if (meta.format !== "dfme/1") return undefined;
  return {
    format: DFME_FORMAT,
    queries: meta.queries,
    iteration: meta.iteration as number,
    seed: meta.seed as number,
    budget: meta.budget as number,
    settings: trainingSettingsKey(meta.settings as object),
    curve: meta.curve as CurvePoint[],
    elapsedMs: meta.elapsedMs as number,
  };
}
