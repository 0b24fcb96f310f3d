/**
 * JBDA — Jacobian-based dataset augmentation (Papernot et al., "Practical
 * Black-Box Attacks against Machine Learning", AsiaCCS 2017): train a
 * substitute (the clone) from a small seed set, growing the set where the
 * substitute's decision changes fastest.
 *
 * The seed set S₀ is `seed_size` images drawn (with the run's seed) from the
 * attacker's seed pool — the runner gives it the test split's images, never
 * their labels. For substitute epochs ρ = 0 … `rounds` − 1:
 * 1. the points of S_ρ not yet labelled are queried (the black box counts
 *    them; a point is never queried twice), answers kept as targets —
 *    one-hot top-1 labels by default (`label: hard`), probabilities with
 *    `label: soft`;
 * 2. the clone trains `epochs` epochs on all of S_ρ (SGD with momentum,
 *    cross-entropy; it carries over from round to round);
 * 3. unless it is the last round, S_{ρ+1} = S_ρ ∪ {clip(x + λ·sign(∇ₓ F(x)[O(x)])) : x ∈ S_ρ}
 *    where F(x)[O(x)] is the clone's logit for the black box's label O(x)
 *    and clip keeps images in [-1, 1].
 *
 * The set doubles each round, so a run spends seed_size·2^(rounds−1)
 * queries; when the budget ends first, the last round labels only the
 * new points that still fit and the run ends after training on them.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type JbdaAttackConfig, JbdaAttackSchema } from "../config/attack_schema.ts";
import { type Dataset, deriveSeed, gatherBatch, sequentialBatches, shuffledIndices } from "../data/mod.ts";
import { loadTensors, saveModel, saveTensors } from "../train/checkpoint.ts";
import { makeOptimizer } from "../train/optim.ts";
import { SOFT_CROSS_ENTROPY } from "../train/losses.ts";
import { makeTrainer } from "../train/trainer.ts";
import type { BlackBox } from "../victim/black_box.ts";
import type { Attack, AttackContext, AttackResult, CurvePoint } from "./attack.ts";
import {
  type CheckpointMeta,
  commitCheckpoint,
  latestCheckpoint,
  loadOptimizerState,
  readCheckpointMeta,
  ResumeError,
  saveOptimizerState,
  trainingSettingsKey,
} from "./checkpoint.ts";
import { type CloneFactory, cloneFactory } from "./clone.ts";
import { checkPool } from "./knockoff.ts";
import { loadTransferSet, saveTransferSet } from "./transfer_checkpoint.ts";
import { checkBudget, copyWeightsFrom } from "./loop.ts";
import { queryTargets, trainEpoch, TransferSet } from "./transfer_set.ts";

/** JBDA's settings: a `type: jbda` entry, defaults applied, without `type`, `name`, `budget`. */
export type JbdaSettings = Omit<JbdaAttackConfig, "type" | "name" | "budget">;

/** A partial `type: jbda` entry; missing fields take the schema's defaults. */
export type JbdaConfigInput = Partial<Omit<JbdaAttackConfig, "type">>;

/** Resolves a partial JBDA config with the schema's defaults (and checks it). */
export function jbdaSettings(config: JbdaConfigInput = {}): JbdaSettings {
  const parsed = JbdaAttackSchema.parse({ clone_arch: "lenet5", budget: 1, ...config, type: "jbda" });
  const { type: _type, name: _name, budget: _budget, ...settings } = parsed;
  return settings;
}

/** Queries a full JBDA run spends when the budget does not cut it short: seed_size·2^(rounds−1). */
export function jbdaQueries(s: Pick<JbdaSettings, "seed_size" | "rounds">): number {
  return s.seed_size * 2 ** (s.rounds - 1);
}

/** What JBDA needs besides its config. */
export interface JbdaOptions {
  /** The attacker's seed pool: images in [-1, 1] of the black box's shape (labels are not used). */
  seedPool: () => Promise<Dataset>;
  /** Builds the clone from a seed; default from `clone_arch`. */
  makeClone?: CloneFactory;
}

/**
 * The augmentation step: for each image x of `images` [n, h, w, c] with
 * black-box label `labels[i]`, clip(x + λ·sign(∂ logit_label / ∂x), −1, 1).
 * Returns the new images as a flat array (n·h·w·c).
 */
export function jacobianAugment(
  clone: tf.LayersModel,
  images: Float32Array,
  labels: Int32Array,
  imageShape: readonly [number, number, number],
  lambda: number,
  batchSize = 256,
): Float32Array {
  const [h, w, c] = imageShape;
  const size = h * w * c;
  const n = labels.length;
  const out = new Float32Array(n * size);
  for (const idx of sequentialBatches(n, batchSize)) {
    const start = idx[0], b = idx.length;
    const stepped = tf.tidy(() => {
      const x = tf.tensor4d(images.subarray(start * size, (start + b) * size), [b, h, w, c]);
      const onehot = tf.oneHot(tf.tensor1d(labels.subarray(start, start + b), "int32"), clone.outputs[0].shape[1]!);
      const g = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(clone.apply(xi, { training: false }) as tf.Tensor, onehot)))(
        x,
      );
      return tf.clipByValue(tf.add(x, tf.mul(tf.sign(g), lambda)), -1, 1);
    });
    out.set(stepped.dataSync() as Float32Array, start * size);
    stepped.dispose();
  }
  return out;
}

/** The black box's label of each target row (argmax of the probabilities or of the one-hot). */
function targetLabels(targets: Float32Array, k: number): Int32Array {
  const n = targets.length / k;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (targets[i * k + j] > targets[i * k + best]) best = j;
    labels[i] = best;
  }
  return labels;
}

/** `meta.json` of a JBDA checkpoint. */
export interface JbdaCheckpointMeta extends CheckpointMeta {
  /** "jbda/1". */
  format: "jbda/1";
  /** Substitute epochs (rounds) done. */
  round: number;
  /** Labelled points. */
  setSize: number;
  /** Points of the next round waiting to be labelled. */
  pending: number;
  /** The run's seed. */
  seed: number;
  /** The attack budget. */
  budget: number;
  /** The run's settings; a resume needs the same ones (all but `eval_every` and `checkpoint_every`). */
  settings: JbdaSettings;
  /** The learning curve so far. */
  curve: CurvePoint[];
  /** Wall time of the run so far. */
  elapsedMs: number;
}

const FORMAT = "jbda/1";
const SALT = { clone: 0x636c6f6e, seeds: 0x73656564, epoch: 0x65706f63 } as const;

/**
 * The JBDA attack.
 *
 * @example
 * ```ts ignore
 * const seedPool = async () => toSignedRange(await loadDataset("mnist", "test"));
 * const { clone } = await new JbdaAttack({ seed_size: 150, rounds: 6 }, { seedPool }).extract(bb, 4800, { seed: 0 });
 * ```
 */
export class JbdaAttack implements Attack {
  /** "jbda", or the config entry's `name`. */
  readonly name: string;
  /** Resolved settings. */
  readonly settings: JbdaSettings;
  readonly #opts: JbdaOptions;

  /**
   * Resolves the settings of a (partial) config entry.
   *
   * @param config a (partial) `type: jbda` entry (its `budget` is ignored)
   * @param opts the seed pool
   */
  constructor(config: JbdaConfigInput, opts: JbdaOptions) {
    this.name = config.name ?? "jbda";
    this.settings = jbdaSettings(config);
    this.#opts = opts;
  }

  /** Runs the substitute epochs until `rounds` are done or the budget is spent. */
  async extract(blackBox: BlackBox, budget: number, ctx: AttackContext): Promise<AttackResult> {
    checkBudget("jbda", budget);
    const s = this.settings;
    const bb = blackBox;
    const limit = Math.min(budget, bb.budget);
    const [h, w, c] = bb.imageShape;
    const size = h * w * c, k = bb.numClasses;
    const pool = await this.#opts.seedPool();
    checkPool(pool, bb, "jbda: seed pool");
    if (pool.n < s.seed_size) {
      throw new RangeError(`jbda: seed_size ${s.seed_size} exceeds the seed pool ${pool.name} (${pool.n} images)`);
    }
    const makeClone = this.#opts.makeClone ?? cloneFactory(s.clone_arch, bb.imageShape, k);
    const clone = makeClone(deriveSeed(ctx.seed, SALT.clone));
    const { optimizer } = makeOptimizer({
      optimizer: "sgd",
      lr: s.clone_lr,
      momentum: s.clone_momentum,
      weightDecay: s.clone_wd,
    });
    const trainer = makeTrainer(clone, optimizer, SOFT_CROSS_ENTROPY);
    let set = new TransferSet(bb.imageShape, k, jbdaQueries(s));
    let pending = gatherBatch(pool, shuffledIndices(pool.n, deriveSeed(ctx.seed, SALT.seeds)).subarray(0, s.seed_size))
      .images;
    let round = 0;
    let curve: CurvePoint[] = [];
    let elapsedBefore = 0;
    const dir = ctx.checkpointDir;
    let savedRound = -1;
    try {
      if (dir !== undefined) {
        const meta = await readCheckpointMeta<JbdaCheckpointMeta>(dir);
        if (meta !== undefined) {
          const latest = latestCheckpoint(dir);
          if (meta.format !== FORMAT) throw new ResumeError(latest, `format ${meta.format}, expected ${FORMAT}`);
          if (meta.seed !== ctx.seed) throw new ResumeError(latest, `checkpoint of seed ${meta.seed}, not ${ctx.seed}`);
          if (meta.budget !== budget) {
            throw new ResumeError(latest, `checkpoint of budget ${meta.budget}, not ${budget}`);
          }
          if (trainingSettingsKey(meta.settings) !== trainingSettingsKey(s)) {
            throw new ResumeError(latest, `settings differ: checkpoint ${trainingSettingsKey(meta.settings)}`);
          }
          if (meta.queries !== bb.queries) {
            throw new ResumeError(
              latest,
              `the checkpoint has spent ${meta.queries} queries but the black box counts ${bb.queries}; ` +
                `build the BlackBox with { spent: await checkpointQueries(dir) }`,
            );
          }
          set = await loadTransferSet(`${latest}/set`, bb.imageShape, k, meta.setSize);
          const { tensors } = await loadTensors(`${latest}/pending`);
          try {
            const p = tensors.images;
            if (p === undefined || p.size !== meta.pending * size) {
              throw new ResumeError(latest, `pending points do not match meta (${meta.pending})`);
            }
            pending = (p.dataSync() as Float32Array).slice();
          } finally {
            tf.dispose(Object.values(tensors));
          }
          await copyWeightsFrom(clone, `${latest}/clone`);
          await loadOptimizerState(`${latest}/clone_optimizer`, optimizer);
          round = meta.round;
          curve = [...meta.curve];
          elapsedBefore = meta.elapsedMs;
          savedRound = round;
        }
      }
      const t0 = performance.now();
      const elapsedMs = () => elapsedBefore + (performance.now() - t0);
      const save = async () => {
        if (dir === undefined || savedRound === round) return;
        const meta: JbdaCheckpointMeta = {
          format: FORMAT,
          queries: bb.queries,
          round,
          setSize: set.n,
          pending: pending.length / size,
          seed: ctx.seed,
          budget,
          settings: s,
          curve,
          elapsedMs: elapsedMs(),
        };
        await commitCheckpoint(dir, meta, async (stage) => {
          await saveModel(clone, `${stage}/clone`);
          await saveOptimizerState(`${stage}/clone_optimizer`, optimizer);
          await saveTransferSet(`${stage}/set`, set);
          const p = tf.tensor4d(pending, [pending.length / size, h, w, c]);
          try {
            await saveTensors(`${stage}/pending`, { images: p });
          } finally {
            p.dispose();
          }
        });
        savedRound = round;
      };

      while (round < s.rounds && pending.length > 0 && bb.queries < limit) {
        // 1. Label the new points that fit in the budget.
        const m = Math.min(pending.length / size, limit - bb.queries);
        for (const idx of sequentialBatches(m, 256)) {
          const start = idx[0], b = idx.length;
          tf.tidy(() => {
            const x = tf.tensor4d(pending.subarray(start * size, (start + b) * size), [b, h, w, c]);
            set.add(x, queryTargets(bb, x));
          });
        }
        // 2. Train the substitute on everything labelled so far.
        for (let e = 0; e < s.epochs; e++) {
          trainEpoch(trainer, set, s.batch_size, deriveSeed(ctx.seed, SALT.epoch, round, e));
        }
        round++;
        // 3. Augment along the sign of the substitute's Jacobian (not after the last round).
        pending = round < s.rounds && bb.queries < limit
          ? jacobianAugment(clone, set.images, targetLabels(set.targets, k), bb.imageShape, s.lambda)
          : new Float32Array(0);
        let cloneAcc: number | undefined;
        if (ctx.evaluate) {
          cloneAcc = await ctx.evaluate(clone);
          curve.push({ queries: bb.queries, cloneAcc });
        }
        await save();
        await ctx.onProgress?.({ queries: bb.queries, budget, iteration: round, cloneAcc, elapsedMs: elapsedMs() });
      }
      return { clone, queries: bb.queries, curve };
    } catch (e) {
      clone.dispose();
      throw e;
    } finally {
      trainer.dispose();
      optimizer.dispose();
    }
  }
}
