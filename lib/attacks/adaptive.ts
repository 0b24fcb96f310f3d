/**
 * The adaptive attacker of the MeCo paper (Table 4): an attacker who knows
 * that the victim is defended by a data-dependent random input perturbation
 * and fights it with one of its own.
 *
 * It runs DFME ({@linkcode dfmeIteration}), but every generated query x is
 * replaced by x̃ = clip(x + h_a(x, ε), −1, 1) before it reaches the black box
 * (and the clone is trained on x̃ with the victim's answers on x̃). h_a has
 * MeCo's perturbation architecture ({@linkcode perturbationNet}: x and fresh
 * Gaussian noise ε in, an L∞-bounded perturbation out). The zeroth-order
 * estimate's m + 1 variants of a sample share one ε, so the forward
 * differences measure the generator's direction and not the noise.
 *
 * What h_a learns: MeCo's h is trained (with SVGD-simulated attack queries) to
 * make answers misleading near the victim's decision boundaries, where
 * synthetic queries sit, while leaving confident, in-distribution inputs
 * almost untouched. After each DFME iteration the attacker takes
 * `perturb_iters` Adam steps on h_a that minimise the clone's cross-entropy
 * on x̃ towards the clone's own label of x — moving every query, with a fresh
 * random perturbation, into the interior of its class (as seen through the
 * clone, the attacker's model of the victim), where the defense's answers are
 * reliable. These steps query nothing.
 *
 * Queries per iteration are DFME's: `batch_size · (g_iter·(m+1) + d_iter)`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { AdaptiveAttackSchema, type AttackOf } from "../config/attack_schema.ts";
import { deriveSeed } from "../data/rng.ts";
import { perturbationNet } from "../models/perturbation.ts";
import { saveModel } from "../train/checkpoint.ts";
import { TorchAdam } from "../train/optim.ts";
import type { BlackBox } from "../victim/black_box.ts";
import type { Attack, AttackContext, AttackResult } from "./attack.ts";
import { loadOptimizerState, saveOptimizerState } from "./checkpoint.ts";
import type { CloneFactory } from "./clone.ts";
import {
  createDfmeState,
  dfmeIteration,
  dfmeQueriesPerIteration,
  type DfmeSettings,
  type DfmeState,
  disposeDfmeState,
  type QueryTransform,
  restoreDfmeState,
  saveDfmeState,
} from "./dfme.ts";
import { checkBudget, copyWeightsFrom, type IterativeRun, runAttackLoop } from "./loop.ts";

/** The adaptive attacker's settings: a `type: adaptive` entry with defaults, without `type`, `name`, `budget`. */
export type AdaptiveSettings = Omit<AttackOf<"adaptive">, "type" | "name" | "budget">;

/** A partial `type: adaptive` entry. */
export type AdaptiveConfigInput = Partial<Omit<AttackOf<"adaptive">, "type">>;

/** Resolves a partial adaptive config with the schema's defaults (and checks it). */
export function adaptiveSettings(config: AdaptiveConfigInput = {}): AdaptiveSettings {
  const parsed = AdaptiveAttackSchema.parse({ clone_arch: "lenet5", budget: 1, ...config, type: "adaptive" });
  const { type: _t, name: _n, budget: _b, ...settings } = parsed;
  return settings;
}

const PERTURB_SALT = 0x61647074;

/**
 * The attacker's query transform: x ↦ clip(x + h_a(x, ε), −1, 1), with one ε
 * per block of `group` consecutive images, drawn from `seed`.
 */
export function perturbQueries(perturb: tf.LayersModel, training = false): QueryTransform {
  return (x, group, seed) =>
    tf.tidy(() => {
      const [n, h, w, c] = x.shape;
      if (n % group !== 0) throw new RangeError(`perturbQueries: batch ${n} is not a multiple of group ${group}`);
      let eps = tf.randomNormal([n / group, 1, h, w, c], 0, 1, "float32", seed);
      if (group > 1) eps = tf.tile(eps, [1, group, 1, 1, 1]);
      const delta = perturb.apply([x, tf.reshape(eps, [n, h, w, c])], { training }) as tf.Tensor4D;
      return tf.clipByValue(tf.add(x, delta), -1, 1) as tf.Tensor4D;
    });
}

/** One adaptive run: a DFME state whose queries pass through h_a, plus h_a and its optimizer. */
export class AdaptiveRun implements IterativeRun {
  /** The DFME run (generator, clone, their optimizers) whose queries pass through h_a. */
  readonly state: DfmeState;
  /** h_a, the attacker's perturbation net: image and Gaussian noise ε in, a bounded perturbation out. */
  readonly perturb: tf.LayersModel;
  /** Adam on h_a's weights (learning rate `perturb_lr`). */
  readonly perturbOptimizer: TorchAdam;
  readonly totalIterations: number;
  readonly queriesPerIteration: number;
  /** The last h_a loss (clone cross-entropy on perturbed queries). */
  lastPerturbLoss: number = NaN;

  /**
   * Builds h_a and its optimizer and a DFME run whose queries pass through h_a.
   *
   * @param blackBox the defended victim
   * @param settings resolved settings (DFME's plus h_a's)
   * @param seed the run's seed (h_a's initial weights and noise derive from it)
   * @param budget black-box queries the run may spend
   * @param makeClone clone factory (absent: the settings' `clone_arch`)
   */
  constructor(
    blackBox: BlackBox,
    readonly settings: AdaptiveSettings,
    readonly seed: number,
    budget: number,
    makeClone?: CloneFactory,
  ) {
    const shape = [...blackBox.imageShape] as [number, number, number];
    this.perturb = perturbationNet({
      imageShape: shape,
      width: settings.perturb_width,
      bound: settings.perturb_bound,
      seed: deriveSeed(seed, PERTURB_SALT),
    });
    this.perturbOptimizer = new TorchAdam(settings.perturb_lr);
    const { perturb_width: _w, perturb_bound: _b, perturb_lr: _l, perturb_iters: _i, ...dfme } = settings;
    this.state = createDfmeState({
      blackBox,
      budget,
      seed,
      settings: dfme as DfmeSettings,
      makeClone,
      queryTransform: perturbQueries(this.perturb),
    });
    this.queriesPerIteration = dfmeQueriesPerIteration(settings);
    this.totalIterations = this.state.totalIterations;
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

  /**
   * One Adam step of h_a on a fresh generated batch: minimise the clone's
   * cross-entropy on the perturbed images towards its label of the clean ones.
   */
  perturbStep(seed: number): number {
    const s = this.settings;
    const vars = this.perturb.trainableWeights.map((w) => w.read() as tf.Variable);
    const transform = perturbQueries(this.perturb, true);
    return tf.tidy(() => {
      const z = tf.randomNormal([s.batch_size, s.nz], 0, 1, "float32", deriveSeed(seed, 0));
      const x = tf.tanh(this.state.generator.apply(z, { training: false }) as tf.Tensor4D);
      const logits = this.clone.apply(x, { training: false }) as tf.Tensor2D;
      const label = tf.oneHot(tf.argMax(logits, 1), this.state.blackBox.numClasses);
      const { value, grads } = tf.variableGrads(() => {
        const logits = this.clone.apply(transform(x, 1, deriveSeed(seed, 1)), { training: false }) as tf.Tensor2D;
        return tf.losses.softmaxCrossEntropy(label, logits) as tf.Scalar;
      }, vars);
      this.perturbOptimizer.applyGradients(grads);
      return value.dataSync()[0];
    });
  }

  /** One DFME iteration through h_a, then `perturb_iters` steps of h_a. */
  step(): void {
    const i = this.state.iteration;
    dfmeIteration(this.state);
    for (let k = 0; k < this.settings.perturb_iters; k++) {
      this.lastPerturbLoss = this.perturbStep(deriveSeed(this.seed, PERTURB_SALT, i, k));
    }
  }

  /** DFME's models and optimizers ({@linkcode saveDfmeState}), then h_a and its optimizer. */
  async save(stage: string): Promise<void> {
    await saveDfmeState(this.state, stage);
    await saveModel(this.perturb, `${stage}/perturb`);
    await saveOptimizerState(`${stage}/perturb_optimizer`, this.perturbOptimizer);
  }

  /** Reads back what {@linkcode save} wrote. */
  async restore(dir: string): Promise<void> {
    await restoreDfmeState(this.state, dir);
    await copyWeightsFrom(this.perturb, `${dir}/perturb`);
    await loadOptimizerState(`${dir}/perturb_optimizer`, this.perturbOptimizer);
  }

  dispose(keepClone: boolean): void {
    disposeDfmeState(this.state, { keepClone });
    this.perturb.dispose();
    this.perturbOptimizer.dispose();
  }
}

/**
 * The adaptive (defense-aware) attacker.
 *
 * @example
 * ```ts ignore
 * const attack = new AdaptiveAttack({ gen_width: 16, perturb_width: 8 });
 * const { clone } = await attack.extract(blackBox, 1_000_000, { seed: 0, evaluate });
 * ```
 */
export class AdaptiveAttack implements Attack {
  /** "adaptive", or the config entry's `name`. */
  readonly name: string;
  /** Resolved settings. */
  readonly settings: AdaptiveSettings;
  readonly #makeClone?: CloneFactory;

  /**
   * Resolves the settings of a (partial) config entry.
   *
   * @param config a (partial) `type: adaptive` entry
   * @param models clone factory
   */
  constructor(config: AdaptiveConfigInput = {}, models: { makeClone?: CloneFactory } = {}) {
    this.name = config.name ?? "adaptive";
    this.settings = adaptiveSettings(config);
    this.#makeClone = models.makeClone;
  }

  /** Runs the adaptive attack until `budget` queries are spent (or no full iteration fits). */
  async extract(blackBox: BlackBox, budget: number, ctx: AttackContext): Promise<AttackResult> {
    checkBudget(this.name, budget);
    const run = new AdaptiveRun(blackBox, this.settings, ctx.seed, budget, this.#makeClone);
    return await runAttackLoop(run, blackBox, budget, ctx, {
      name: this.name,
      format: "adaptive/1",
      settings: this.settings,
      evalEvery: this.settings.eval_every,
      checkpointEvery: this.settings.checkpoint_every,
    });
  }
}
