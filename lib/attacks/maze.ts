/**
 * MAZE — data-free model stealing by zeroth-order gradient estimation
 * (Kariyappa, Prakash & Qureshi, CVPR 2021).
 *
 * One iteration ({@linkcode MazeRun.step}):
 * 1. `gen_iters` generator steps. Queries are x = tanh(G(z)). The generator
 *    maximises the disagreement KL(victim(x) ‖ clone(x)); its gradient with
 *    respect to the image x is estimated from the black box by forward
 *    differences along `n_dirs` random unit (normalised Gaussian) directions u
 *    with step `eps`: ĝ = d/n_dirs · Σ_u (ℓ(x + eps·u) − ℓ(x))/eps · u, with
 *    ℓ = −KL per sample and d the image dimension; G's parameters get the
 *    vector-Jacobian product of ĝ and an Adam step. The unperturbed batch and
 *    the victim's answers on it go to the replay buffer.
 * 2. `clone_iters` clone steps minimising KL(victim ‖ clone): the first reuses
 *    the last generator step's batch (already answered), the others query
 *    fresh generated batches (which join the replay buffer too).
 * 3. `replay_iters` more clone steps on batches drawn uniformly from the
 *    replay buffer (experience replay; no queries). The buffer keeps every
 *    answered batch, or the `replay_size` most recent images when set.
 *
 * Queries per iteration: `batch_size · ((clone_iters − 1) + (1 + n_dirs) · gen_iters)`.
 * Learning rates of both networks follow cosine annealing over the iterations
 * the budget allows; the clone uses SGD with momentum and weight decay, the
 * generator Adam.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type AttackOf, MazeAttackSchema } from "../config/attack_schema.ts";
import { deriveSeed, mulberry32, seedSequence } from "../data/rng.ts";
import { dfmeGenerator } from "../models/dfme_generator.ts";
import { saveModel } from "../train/checkpoint.ts";
import { KL_DIVERGENCE, klPerSample } from "../train/losses.ts";
import { cosineLr, makeOptimizer, TorchAdam } from "../train/optim.ts";
import { makeTrainer, type Trainer } from "../train/trainer.ts";
import type { BlackBox } from "../victim/black_box.ts";
import { detach } from "../victim/detach.ts";
import type { Attack, AttackContext, AttackResult } from "./attack.ts";
import { loadOptimizerState, saveOptimizerState } from "./checkpoint.ts";
import { type CloneFactory, cloneFactory } from "./clone.ts";
import { checkBudget, copyWeightsFrom, type IterativeRun, runAttackLoop } from "./loop.ts";
import { ReplayBuffer } from "./replay_buffer.ts";

/** MAZE's settings: a `type: maze` entry with defaults, without `type`, `name`, `budget`. */
export type MazeSettings = Omit<AttackOf<"maze">, "type" | "name" | "budget">;

/** A partial `type: maze` entry. */
export type MazeConfigInput = Partial<Omit<AttackOf<"maze">, "type">>;

/** Resolves a partial MAZE config with the schema's defaults (and checks it). */
export function mazeSettings(config: MazeConfigInput = {}): MazeSettings {
  const parsed = MazeAttackSchema.parse({ clone_arch: "lenet5", budget: 1, ...config, type: "maze" });
  const { type: _t, name: _n, budget: _b, ...settings } = parsed;
  return settings;
}

/** Queries of one MAZE iteration: `batch_size · ((clone_iters − 1) + (1 + n_dirs) · gen_iters)`. */
export function mazeQueriesPerIteration(
  s: Pick<MazeSettings, "batch_size" | "clone_iters" | "n_dirs" | "gen_iters">,
): number {
  return s.batch_size * ((s.clone_iters - 1) + (1 + s.n_dirs) * s.gen_iters);
}

/** Models that are not part of the config. */
export interface MazeModelOptions {
  /** Builds the clone from a seed; default from `clone_arch`. */
  makeClone?: CloneFactory;
}

const INIT_SALT = { clone: 0x636c6f6e, generator: 0x67656e } as const;

/** One MAZE run's state; see the module documentation. */
export class MazeRun implements IterativeRun {
  readonly clone: tf.LayersModel;
  /** The generator G (DFME's): noise of length `nz` in; the tanh of its output is a query. */
  readonly generator: tf.LayersModel;
  /** Adam on the generator's weights (cosine-annealed learning rate). */
  readonly generatorOptimizer: TorchAdam;
  /** SGD with momentum and weight decay on the clone's weights, and its learning-rate setter. */
  readonly cloneOptimizer: { optimizer: tf.Optimizer; setLr: (lr: number) => void };
  /** The answered batches the replay steps draw from. */
  readonly replay: ReplayBuffer;
  /** The clone's training step (KL divergence to the victim's answers). */
  readonly cloneTrainer: Trainer<tf.Tensor2D>;
  readonly totalIterations: number;
  readonly queriesPerIteration: number;
  iteration = 0;

  /** Fresh models from `seed`; `budget` sets the iteration count. */
  constructor(
    readonly blackBox: BlackBox,
    readonly settings: MazeSettings,
    readonly seed: number,
    budget: number,
    models: MazeModelOptions = {},
  ) {
    const s = settings;
    const shape = [...blackBox.imageShape] as [number, number, number];
    const makeClone = models.makeClone ?? cloneFactory(s.clone_arch, blackBox.imageShape, blackBox.numClasses);
    this.clone = makeClone(deriveSeed(seed, INIT_SALT.clone));
    this.generator = dfmeGenerator({
      seed: deriveSeed(seed, INIT_SALT.generator),
      nz: s.nz,
      width: s.gen_width,
      imageShape: shape,
    });
    this.generatorOptimizer = new TorchAdam(s.gen_lr);
    this.cloneOptimizer = makeOptimizer({
      optimizer: "sgd",
      lr: s.clone_lr,
      momentum: s.clone_momentum,
      weightDecay: s.clone_wd,
    });
    this.cloneTrainer = makeTrainer(this.clone, this.cloneOptimizer.optimizer, KL_DIVERGENCE);
    this.replay = new ReplayBuffer(shape, blackBox.numClasses, s.replay_size);
    this.queriesPerIteration = mazeQueriesPerIteration(s);
    this.totalIterations = Math.floor(budget / this.queriesPerIteration);
  }

  /**
   * The zeroth-order estimate of d(Σ per-sample −KL)/dx / n at images `x`
   * [n, h, w, c] (one black-box call of n·(n_dirs + 1) images). Also returns
   * the victim's probabilities at `x` and the mean generator loss.
   */
  gradientEstimate(x: tf.Tensor4D, seed: number): { gradient: tf.Tensor4D; answers: tf.Tensor2D; loss: tf.Scalar } {
    return tf.tidy(() => {
      const { n_dirs: m, eps } = this.settings;
      const [n, h, w, c] = x.shape;
      const dim = h * w * c;
      const raw = tf.randomNormal([n, m, dim], 0, 1, "float32", seed);
      const u = tf.div(raw, tf.norm(raw, "euclidean", 2, true));
      const flat = tf.reshape(x, [n, 1, dim]);
      const points = tf.reshape(tf.concat([tf.add(flat, tf.mul(u, eps)), flat], 1), [n * (m + 1), h, w, c]);
      const p = this.blackBox.query(points as tf.Tensor4D) as tf.Tensor2D;
      const logits = this.clone.apply(points, { training: false }) as tf.Tensor2D;
      const perSample = tf.reshape(tf.neg(klPerSample(p, logits)), [n, m + 1]);
      const base = tf.slice(perSample, [0, m], [n, 1]);
      const diff = tf.reshape(tf.div(tf.sub(tf.slice(perSample, [0, 0], [n, m]), base), eps), [n, m, 1]);
      const gradient = tf.div(tf.mean(tf.mul(tf.mul(diff, dim), u), 1), n);
      const answers = tf.reshape(tf.slice(tf.reshape(p, [n, m + 1, -1]), [0, m, 0], [n, 1, -1]), [n, -1]);
      return {
        gradient: tf.reshape(gradient, x.shape) as tf.Tensor4D,
        answers: answers as tf.Tensor2D,
        loss: tf.mean(base) as tf.Scalar,
      };
    });
  }

  #cloneStep(x: tf.Tensor4D, p: tf.Tensor2D): void {
    tf.tidy(() => {
      this.cloneTrainer.step(x, p);
    });
  }

  /** One MAZE iteration (see the module documentation). */
  step(): void {
    const s = this.settings;
    const n = s.batch_size;
    const progress = this.iteration / Math.max(1, this.totalIterations);
    this.generatorOptimizer.learningRate = cosineLr(s.gen_lr, progress);
    this.cloneOptimizer.setLr(cosineLr(s.clone_lr, progress));
    const nextSeed = seedSequence(this.seed, this.iteration);

    const generatorVars = this.generator.trainableWeights.map((w) => w.read() as tf.Variable);
    let last: { x: tf.Tensor4D; p: tf.Tensor2D } | undefined;
    for (let g = 0; g < s.gen_iters; g++) {
      const zSeed = nextSeed(), uSeed = nextSeed();
      const kept = tf.tidy(() => {
        const z = tf.randomNormal([n, s.nz], 0, 1, "float32", zSeed);
        let base: { x: tf.Tensor4D; p: tf.Tensor2D } | undefined;
        const { value, grads } = tf.variableGrads(() => {
          const x = tf.tanh(this.generator.apply(z, { training: true }) as tf.Tensor4D);
          const xd = detach(x);
          const est = this.gradientEstimate(xd, uSeed);
          base = { x: tf.keep(xd), p: tf.keep(est.answers) };
          return tf.sum(tf.mul(x, est.gradient));
        }, generatorVars);
        this.generatorOptimizer.applyGradients(grads);
        tf.dispose([value, ...Object.values(grads)]);
        return base!;
      });
      this.replay.add(kept.x, kept.p);
      if (last) tf.dispose([last.x, last.p]);
      last = kept;
    }

    for (let c = 0; c < s.clone_iters; c++) {
      if (c > 0) {
        const zSeed = nextSeed();
        const fresh = tf.tidy(() => {
          const z = tf.randomNormal([n, s.nz], 0, 1, "float32", zSeed);
          const x = tf.tanh(this.generator.apply(z, { training: true }) as tf.Tensor4D);
          return { x, p: this.blackBox.query(x) as tf.Tensor2D };
        });
        this.replay.add(fresh.x, fresh.p);
        tf.dispose([last!.x, last!.p]);
        last = fresh;
      }
      this.#cloneStep(last!.x, last!.p);
    }
    tf.dispose([last!.x, last!.p]);

    for (let r = 0; r < s.replay_iters; r++) {
      const batch = this.replay.sample(n, mulberry32(nextSeed()));
      this.#cloneStep(batch.x, batch.p);
      tf.dispose([batch.x, batch.p]);
    }
    this.iteration++;
  }

  async save(stage: string): Promise<void> {
    await saveModel(this.clone, `${stage}/clone`);
    await saveModel(this.generator, `${stage}/generator`);
    await saveOptimizerState(`${stage}/clone_optimizer`, this.cloneOptimizer.optimizer);
    await saveOptimizerState(`${stage}/generator_optimizer`, this.generatorOptimizer);
    await this.replay.save(`${stage}/replay`);
  }

  async restore(dir: string): Promise<void> {
    await copyWeightsFrom(this.clone, `${dir}/clone`);
    await copyWeightsFrom(this.generator, `${dir}/generator`);
    await loadOptimizerState(`${dir}/clone_optimizer`, this.cloneOptimizer.optimizer);
    await loadOptimizerState(`${dir}/generator_optimizer`, this.generatorOptimizer);
    await this.replay.load(`${dir}/replay`);
  }

  dispose(keepClone: boolean): void {
    this.generator.dispose();
    this.generatorOptimizer.dispose();
    this.cloneOptimizer.optimizer.dispose();
    this.cloneTrainer.dispose();
    if (!keepClone) this.clone.dispose();
  }
}

/**
 * The MAZE attack (soft labels).
 *
 * @example
 * ```ts ignore
 * const { clone, curve } = await new MazeAttack({ gen_width: 16 }).extract(blackBox, 1_000_000, { seed: 0, evaluate });
 * ```
 */
export class MazeAttack implements Attack {
  /** "maze", or the config entry's `name`. */
  readonly name: string;
  /** Resolved settings. */
  readonly settings: MazeSettings;
  readonly #models: MazeModelOptions;

  /**
   * Resolves the settings of a (partial) config entry.
   *
   * @param config a (partial) `type: maze` entry
   * @param models clone factory
   */
  constructor(config: MazeConfigInput = {}, models: MazeModelOptions = {}) {
    this.name = config.name ?? "maze";
    this.settings = mazeSettings(config);
    this.#models = models;
  }

  /** Runs MAZE until `budget` queries are spent (or no full iteration fits). */
  async extract(blackBox: BlackBox, budget: number, ctx: AttackContext): Promise<AttackResult> {
    checkBudget(this.name, budget);
    if (blackBox.labels !== "soft") {
      throw new Error(`${this.name}: MAZE needs a soft-label black box (probabilities), got labels: hard`);
    }
    const run = new MazeRun(blackBox, this.settings, ctx.seed, budget, this.#models);
    return await runAttackLoop(run, blackBox, budget, ctx, {
      name: this.name,
      format: "maze/1",
      settings: this.settings,
      evalEvery: this.settings.eval_every,
      checkpointEvery: this.settings.checkpoint_every,
    });
  }
}
