/**
 * DFMS-HL — data-free model stealing in the hard-label setting (Sanyal,
 * Addepalli & Babu, CVPR 2022). The victim answers only its top-1 class.
 *
 * 1. Proxy data: `proxy_size` images of `proxy_dataset`; for the data-free
 *    setting (`synthetic`) random shapes of random colours, blurred and
 *    reduced to the image size ({@linkcode syntheticShapes}).
 * 2. {@linkcode DfmsHlRun.prepare}: a DCGAN (the DFME generator with tanh,
 *    and {@linkcode dcganDiscriminator}) is pretrained on the proxy data for
 *    `gan_pretrain_epochs` epochs (non-saturating GAN losses, Adam with β₁ =
 *    0.5). No queries.
 * 3. Each iteration ({@linkcode DfmsHlRun.step}):
 *    - one generator step on L_adv + div_weight · L_div, where L_adv is the
 *      non-saturating GAN loss against the discriminator (images stay
 *      proxy-like) and L_div = Σ_j α_j log α_j with α the batch mean of the
 *      clone's softmax on the generated batch: the negative entropy of the
 *      clone's class distribution, minimised so that generated images cover
 *      all classes evenly (class diversity);
 *    - one discriminator step (proxy images real, generated images fake);
 *    - `clone_iters` clone steps, each on `batch_size` fresh generated images
 *      plus `proxy_batch_size` proxy images, labelled by the victim's top-1
 *      answers (cross-entropy; SGD with momentum and weight decay, step
 *      schedule `lr_decay_at` / `lr_gamma`).
 *
 * Queries per iteration: `clone_iters · (batch_size + proxy_batch_size)`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type AttackOf, DfmsHlAttackSchema } from "../config/attack_schema.ts";
import {
  type Dataset,
  DATASET_NAMES,
  type DatasetName,
  deriveSeed,
  loadDataset,
  mulberry32,
  seedSequence,
  subset,
  toSignedRange,
} from "../data/mod.ts";
import { syntheticShapes } from "../data/synthetic_shapes.ts";
import { dcganDiscriminator } from "../models/dcgan_discriminator.ts";
import { dfmeGenerator } from "../models/dfme_generator.ts";
import { saveModel } from "../train/checkpoint.ts";
import { CROSS_ENTROPY } from "../train/losses.ts";
import { makeOptimizer, stepLr, TorchAdam } from "../train/optim.ts";
import { makeTrainer, type Trainer } from "../train/trainer.ts";
import type { BlackBox } from "../victim/black_box.ts";
import type { Attack, AttackContext, AttackResult } from "./attack.ts";
import { loadOptimizerState, saveOptimizerState } from "./checkpoint.ts";
import { type CloneFactory, cloneFactory } from "./clone.ts";
import { checkBudget, copyWeightsFrom, type IterativeRun, runAttackLoop } from "./loop.ts";

/** DFMS-HL's settings: a `type: dfms_hl` entry with defaults, without `type`, `name`, `budget`. */
export type DfmsHlSettings = Omit<AttackOf<"dfms_hl">, "type" | "name" | "budget">;

/** A partial `type: dfms_hl` entry. */
export type DfmsHlConfigInput = Partial<Omit<AttackOf<"dfms_hl">, "type">>;

/** Resolves a partial DFMS-HL config with the schema's defaults (and checks it). */
export function dfmsHlSettings(config: DfmsHlConfigInput = {}): DfmsHlSettings {
  const parsed = DfmsHlAttackSchema.parse({ clone_arch: "lenet5", budget: 1, ...config, type: "dfms_hl" });
  const { type: _t, name: _n, budget: _b, ...settings } = parsed;
  return settings;
}

/** Queries of one DFMS-HL iteration: `clone_iters · (batch_size + proxy_batch_size)`. */
export function dfmsHlQueriesPerIteration(
  s: Pick<DfmsHlSettings, "clone_iters" | "batch_size" | "proxy_batch_size">,
): number {
  return s.clone_iters * (s.batch_size + s.proxy_batch_size);
}

/**
 * The proxy images ([-1, 1]) for `settings` at the black box's image shape:
 * random shapes, or a seeded sample of a registered dataset's training split.
 *
 * @throws {Error} when a proxy dataset's image shape differs from the victim's
 */
export async function proxyImages(
  s: Pick<DfmsHlSettings, "proxy_dataset" | "proxy_size">,
  imageShape: readonly [number, number, number],
  seed: number,
): Promise<Dataset> {
  const [height, width, channels] = imageShape;
  if (s.proxy_dataset === "synthetic") {
    return toSignedRange(syntheticShapes({ n: s.proxy_size, height, width, channels, seed }));
  }
  if (!(DATASET_NAMES as readonly string[]).includes(s.proxy_dataset)) {
    throw new Error(
      `dfms_hl: proxy_dataset ${s.proxy_dataset} is not available here; have ${DATASET_NAMES.join(", ")}`,
    );
  }
  const ds = await loadDataset(s.proxy_dataset as DatasetName, "train");
  if (ds.height !== height || ds.width !== width || ds.channels !== channels) {
    throw new Error(
      `dfms_hl: proxy_dataset ${s.proxy_dataset} has images ${ds.height}×${ds.width}×${ds.channels}, ` +
        `the victim takes ${height}×${width}×${channels}`,
    );
  }
  return toSignedRange(subset(ds, Math.min(s.proxy_size, ds.n), { seed }));
}

/** Models that are not part of the config. */
export interface DfmsHlModelOptions {
  /** Builds the clone from a seed; default from `clone_arch`. */
  makeClone?: CloneFactory;
}

const SALT = { clone: 0x636c6f6e, generator: 0x67656e, discriminator: 0x646973, proxy: 0x70726f78 } as const;

/** Non-saturating GAN loss terms: mean softplus(−logit) for "real", mean softplus(logit) for "fake". */
function ganLoss(logits: tf.Tensor, real: boolean): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.softplus(real ? tf.neg(logits) : logits)) as tf.Scalar);
}

/** One DFMS-HL run's state; see the module documentation. */
export class DfmsHlRun implements IterativeRun {
  readonly clone: tf.LayersModel;
  /** The DCGAN's generator (DFME's): noise of length `nz` in; the tanh of its output is an image. */
  readonly generator: tf.LayersModel;
  /** The DCGAN's discriminator: images in [-1, 1] in, one real-vs-generated logit each out. */
  readonly discriminator: tf.LayersModel;
  /** Adam (β₁ = 0.5) on the generator's weights. */
  readonly generatorOptimizer: TorchAdam;
  /** Adam (β₁ = 0.5) on the discriminator's weights. */
  readonly discriminatorOptimizer: TorchAdam;
  /** SGD with momentum and weight decay on the clone's weights, and its learning-rate setter. */
  readonly cloneOptimizer: { optimizer: tf.Optimizer; setLr: (lr: number) => void };
  /** The clone's training step (cross-entropy to the victim's labels). */
  readonly cloneTrainer: Trainer<tf.Tensor1D>;
  readonly totalIterations: number;
  readonly queriesPerIteration: number;
  iteration = 0;
  /** Statistics of the last step (for tests and logs). */
  last = { adv: NaN, div: NaN, disc: NaN, clone: NaN };

  /**
   * Builds a fresh run's models and optimizers; the GAN is pretrained by {@linkcode DfmsHlRun.prepare}.
   *
   * @param blackBox the victim (its top-1 labels)
   * @param settings resolved settings
   * @param seed the run's seed (initial weights and draws derive from it)
   * @param budget black-box queries the run may spend
   * @param proxy proxy images in [-1, 1] at the victim's image shape (see {@linkcode proxyImages})
   * @param models clone factory
   */
  constructor(
    readonly blackBox: BlackBox,
    readonly settings: DfmsHlSettings,
    readonly seed: number,
    budget: number,
    readonly proxy: Dataset,
    models: DfmsHlModelOptions = {},
  ) {
    const s = settings;
    const shape = [...blackBox.imageShape] as [number, number, number];
    if (proxy.height !== shape[0] || proxy.width !== shape[1] || proxy.channels !== shape[2] || proxy.n < 1) {
      throw new RangeError(`dfms_hl: proxy images must be a non-empty set of ${shape.join("×")} images`);
    }
    const makeClone = models.makeClone ?? cloneFactory(s.clone_arch, blackBox.imageShape, blackBox.numClasses);
    this.clone = makeClone(deriveSeed(seed, SALT.clone));
    this.generator = dfmeGenerator({
      seed: deriveSeed(seed, SALT.generator),
      nz: s.nz,
      width: s.gen_width,
      imageShape: shape,
    });
    this.discriminator = dcganDiscriminator({
      seed: deriveSeed(seed, SALT.discriminator),
      imageShape: shape,
      width: s.gen_width,
    });
    this.generatorOptimizer = new TorchAdam(s.gen_lr, 0.5, 0.999);
    this.discriminatorOptimizer = new TorchAdam(s.gen_lr, 0.5, 0.999);
    this.cloneOptimizer = makeOptimizer({
      optimizer: "sgd",
      lr: s.clone_lr,
      momentum: s.clone_momentum,
      weightDecay: s.clone_wd,
    });
    this.cloneTrainer = makeTrainer(this.clone, this.cloneOptimizer.optimizer, CROSS_ENTROPY);
    this.queriesPerIteration = dfmsHlQueriesPerIteration(s);
    this.totalIterations = Math.floor(budget / this.queriesPerIteration);
  }

  /** `n` proxy images drawn uniformly (with replacement) by `rng`. */
  proxyBatch(n: number, seed: number): tf.Tensor4D {
    const rng = mulberry32(seed);
    const size = this.proxy.height * this.proxy.width * this.proxy.channels;
    const out = new Float32Array(n * size);
    for (let i = 0; i < n; i++) {
      const j = Math.floor(rng() * this.proxy.n);
      out.set(this.proxy.images.subarray(j * size, (j + 1) * size), i * size);
    }
    return tf.tensor4d(out, [n, this.proxy.height, this.proxy.width, this.proxy.channels]);
  }

  #generate(n: number, seed: number): tf.Tensor4D {
    return tf.tidy(() =>
      tf.tanh(
        this.generator.apply(tf.randomNormal([n, this.settings.nz], 0, 1, "float32", seed), {
          training: true,
        }) as tf.Tensor4D,
      )
    );
  }

  /** One discriminator step: proxy batch (real) vs generated batch (fake). Returns the loss. */
  discriminatorStep(realSeed: number, fakeSeed: number): number {
    const n = this.settings.batch_size;
    const vars = this.discriminator.trainableWeights.map((w) => w.read() as tf.Variable);
    return tf.tidy(() => {
      const real = this.proxyBatch(n, realSeed);
      const fake = this.#generate(n, fakeSeed);
      const { value, grads } = tf.variableGrads(() =>
        tf.add(
          ganLoss(this.discriminator.apply(real, { training: true }) as tf.Tensor, true),
          ganLoss(this.discriminator.apply(fake, { training: true }) as tf.Tensor, false),
        ) as tf.Scalar, vars);
      this.discriminatorOptimizer.applyGradients(grads);
      return value.dataSync()[0];
    });
  }

  /** One generator step on L_adv + `divWeight` · L_div. Returns both terms. */
  generatorStep(seed: number, divWeight: number): { adv: number; div: number } {
    const n = this.settings.batch_size;
    const vars = this.generator.trainableWeights.map((w) => w.read() as tf.Variable);
    return tf.tidy(() => {
      const z = tf.randomNormal([n, this.settings.nz], 0, 1, "float32", seed);
      let adv: tf.Scalar | undefined, div: tf.Scalar | undefined;
      const { grads } = tf.variableGrads(() => {
        const x = tf.tanh(this.generator.apply(z, { training: true }) as tf.Tensor4D);
        adv = ganLoss(this.discriminator.apply(x, { training: true }) as tf.Tensor, true);
        if (divWeight === 0) return tf.keep(adv);
        const alpha = tf.mean(tf.softmax(this.clone.apply(x, { training: false }) as tf.Tensor2D), 0);
        div = tf.sum(tf.mul(alpha, tf.log(tf.maximum(alpha, 1e-12)))) as tf.Scalar;
        tf.keep(adv);
        tf.keep(div);
        return tf.add(adv, tf.mul(div, divWeight)) as tf.Scalar;
      }, vars);
      this.generatorOptimizer.applyGradients(grads);
      const out = { adv: adv!.dataSync()[0], div: div ? div.dataSync()[0] : NaN };
      tf.dispose([adv!, ...(div ? [div] : [])]);
      return out;
    });
  }

  /** GAN pretraining on the proxy data (no queries). */
  prepare(): Promise<void> {
    const s = this.settings;
    const steps = Math.ceil(this.proxy.n / s.batch_size) * s.gan_pretrain_epochs;
    for (let i = 0; i < steps; i++) {
      const seed = (k: number) => deriveSeed(this.seed, 0x70726500, i, k);
      this.discriminatorStep(seed(0), seed(1));
      this.generatorStep(seed(2), 0);
    }
    return Promise.resolve();
  }

  /** The victim's top-1 answers on `x` (a soft black box's probabilities are reduced to their argmax). */
  #labels(x: tf.Tensor4D): tf.Tensor1D {
    return tf.tidy(() => {
      const a = this.blackBox.query(x);
      return (a.rank === 1 ? a : tf.argMax(a, 1)) as tf.Tensor1D;
    });
  }

  /** One DFMS-HL iteration (see the module documentation). */
  step(): void {
    const s = this.settings;
    const progress = this.iteration / Math.max(1, this.totalIterations);
    this.cloneOptimizer.setLr(stepLr(s.clone_lr, progress, s.lr_decay_at, s.lr_gamma));
    const nextSeed = seedSequence(this.seed, this.iteration);
    const g = this.generatorStep(nextSeed(), s.div_weight);
    const disc = this.discriminatorStep(nextSeed(), nextSeed());
    let cloneLoss = NaN;
    for (let c = 0; c < s.clone_iters; c++) {
      const genSeed = nextSeed(), proxySeed = nextSeed();
      cloneLoss = tf.tidy(() => {
        const gen = this.#generate(s.batch_size, genSeed);
        const x = s.proxy_batch_size > 0
          ? tf.concat([gen, this.proxyBatch(s.proxy_batch_size, proxySeed)]) as tf.Tensor4D
          : gen;
        return this.cloneTrainer.step(x, this.#labels(x)).dataSync()[0];
      });
    }
    this.last = { adv: g.adv, div: g.div, disc, clone: cloneLoss };
    this.iteration++;
  }

  async save(stage: string): Promise<void> {
    await saveModel(this.clone, `${stage}/clone`);
    await saveModel(this.generator, `${stage}/generator`);
    await saveModel(this.discriminator, `${stage}/discriminator`);
    await saveOptimizerState(`${stage}/clone_optimizer`, this.cloneOptimizer.optimizer);
    await saveOptimizerState(`${stage}/generator_optimizer`, this.generatorOptimizer);
    await saveOptimizerState(`${stage}/discriminator_optimizer`, this.discriminatorOptimizer);
  }

  async restore(dir: string): Promise<void> {
    await copyWeightsFrom(this.clone, `${dir}/clone`);
    await copyWeightsFrom(this.generator, `${dir}/generator`);
    await copyWeightsFrom(this.discriminator, `${dir}/discriminator`);
    await loadOptimizerState(`${dir}/clone_optimizer`, this.cloneOptimizer.optimizer);
    await loadOptimizerState(`${dir}/generator_optimizer`, this.generatorOptimizer);
    await loadOptimizerState(`${dir}/discriminator_optimizer`, this.discriminatorOptimizer);
  }

  dispose(keepClone: boolean): void {
    this.generator.dispose();
    this.discriminator.dispose();
    this.generatorOptimizer.dispose();
    this.discriminatorOptimizer.dispose();
    this.cloneOptimizer.optimizer.dispose();
    this.cloneTrainer.dispose();
    if (!keepClone) this.clone.dispose();
  }
}

/**
 * The DFMS-HL attack (decision-based: uses only the victim's top-1 labels).
 *
 * @example
 * ```ts ignore
 * const attack = new DfmsHlAttack({ gen_width: 16, proxy_size: 5000, gan_pretrain_epochs: 5 });
 * const { clone } = await attack.extract(hardLabelBlackBox, 500_000, { seed: 0, evaluate });
 * ```
 */
export class DfmsHlAttack implements Attack {
  /** "dfms_hl", or the config entry's `name`. */
  readonly name: string;
  /** Resolved settings. */
  readonly settings: DfmsHlSettings;
  readonly #models: DfmsHlModelOptions;

  /**
   * Resolves the settings of a (partial) config entry.
   *
   * @param config a (partial) `type: dfms_hl` entry
   * @param models clone factory
   */
  constructor(config: DfmsHlConfigInput = {}, models: DfmsHlModelOptions = {}) {
    this.name = config.name ?? "dfms_hl";
    this.settings = dfmsHlSettings(config);
    this.#models = models;
  }

  /** Runs DFMS-HL until `budget` queries are spent (or no full iteration fits). */
  async extract(blackBox: BlackBox, budget: number, ctx: AttackContext): Promise<AttackResult> {
    checkBudget(this.name, budget);
    const proxy = await proxyImages(this.settings, blackBox.imageShape, deriveSeed(ctx.seed, SALT.proxy));
    const run = new DfmsHlRun(blackBox, this.settings, ctx.seed, budget, proxy, this.#models);
    return await runAttackLoop(run, blackBox, budget, ctx, {
      name: this.name,
      format: "dfms_hl/1",
      settings: this.settings,
      evalEvery: this.settings.eval_every,
      checkpointEvery: this.settings.checkpoint_every,
    });
  }
}
