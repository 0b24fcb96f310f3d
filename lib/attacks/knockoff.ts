/**
 * Knockoff Nets (Orekondy et al., CVPR 2019): clone a black box by querying
 * natural images the attacker owns (a surrogate set from another
 * distribution, e.g. Fashion-MNIST against an MNIST victim), then training
 * the clone on the answers (the transfer set).
 *
 * Two sampling strategies pick the queries:
 * - `random`: images drawn uniformly without replacement from the whole
 *   surrogate set (a fresh permutation once it is used up); the clone is
 *   trained after all queries are spent.
 * - `adaptive`: a gradient bandit ({@linkcode GradientBandit}) over the
 *   surrogate's classes chooses, per query, the class to draw the next image
 *   from (without replacement within the class). After each batch the answers
 *   earn rewards — certainty, diversity, loss or their mean (`reward`, see
 *   {@linkcode KnockoffRewards}); the loss reward compares the answer with
 *   the clone's prediction before it sees it — the bandit learns from them one
 *   query at a time, and the clone takes one SGD step on the batch (it is
 *   trained online, so the loss reward follows the clone). Our surrogate sets
 *   have a flat label set, so the paper's class hierarchy has one level: the
 *   actions are the classes.
 *
 * Then the clone trains for `epochs` on the whole transfer set (SGD,
 * momentum, weight decay; learning rate × `lr_gamma` at the `lr_decay_at`
 * fractions of the epochs) with the cross-entropy against the answers:
 * probabilities (`label: soft`) or one-hot top-1 labels (`hard`).
 *
 * Loading the surrogate set is not querying: only `blackBox.query` counts.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type KnockoffAttackConfig, KnockoffAttackSchema } from "../config/attack_schema.ts";
import { type Dataset, deriveSeed, gatherBatch, mulberry32, shuffledIndices } from "../data/mod.ts";
import { saveModel } from "../train/checkpoint.ts";
import { makeOptimizer, stepLr } from "../train/optim.ts";
import { SOFT_CROSS_ENTROPY } from "../train/losses.ts";
import { makeTrainer } from "../train/trainer.ts";
import type { BlackBox } from "../victim/black_box.ts";
import type { Attack, AttackContext, AttackResult, CurvePoint } from "./attack.ts";
import { type BanditState, GradientBandit, KnockoffRewards, type RewardsState } from "./bandit.ts";
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
import { loadTransferSet, saveTransferSet } from "./transfer_checkpoint.ts";
import { checkBudget, copyWeightsFrom } from "./loop.ts";
import { queryTargets, trainEpoch, TransferSet } from "./transfer_set.ts";

/** Knockoff's settings: a `type: knockoff` entry, defaults applied, without `type`, `name`, `budget`. */
export type KnockoffSettings = Omit<KnockoffAttackConfig, "type" | "name" | "budget">;

/** A partial `type: knockoff` entry; missing fields take the schema's defaults (surrogate: fashion_mnist). */
export type KnockoffConfigInput = Partial<Omit<KnockoffAttackConfig, "type">>;

/** Resolves a partial Knockoff config with the schema's defaults (and checks it). */
export function knockoffSettings(config: KnockoffConfigInput = {}): KnockoffSettings {
  const parsed = KnockoffAttackSchema.parse({
    clone_arch: "lenet5",
    surrogate_dataset: "fashion_mnist",
    budget: 1,
    ...config,
    type: "knockoff",
  });
  const { type: _type, name: _name, budget: _budget, ...settings } = parsed;
  return settings;
}

/** What Knockoff needs besides its config. */
export interface KnockoffOptions {
  /**
   * The attacker's surrogate images, in [-1, 1] and of the black box's image
   * shape, with their own class labels (the adaptive strategy's actions).
   */
  surrogate: () => Promise<Dataset>;
  /** Builds the clone from a seed; default from `clone_arch`. */
  makeClone?: CloneFactory;
}

/** A surrogate set that does not fit the black box. */
export class SurrogateError extends Error {
  /**
   * An error with the given message.
   *
   * @param message what is wrong
   */
  constructor(message: string) {
    super(message);
    this.name = "SurrogateError";
  }
}

/** Checks that `pool` can be queried through `bb` (shape) and is not empty. */
export function checkPool(pool: Dataset, bb: BlackBox, what: string): void {
  const [h, w, c] = bb.imageShape;
  if (pool.height !== h || pool.width !== w || pool.channels !== c) {
    throw new SurrogateError(
      `${what} ${pool.name} has ${pool.height}×${pool.width}×${pool.channels} images but the black box takes ` +
        `${h}×${w}×${c}; pick a dataset of the victim's image shape`,
    );
  }
  if (pool.n < 1) throw new SurrogateError(`${what} ${pool.name} is empty`);
}

/** Draws indices without replacement from a list, reshuffling (seeded by the cycle) when it is used up. */
class Cycler {
  #order: Int32Array;
  constructor(readonly items: Int32Array, readonly seed: number, public cycle = 0, public cursor = 0) {
    this.#order = this.#shuffle();
  }
  #shuffle(): Int32Array {
    const perm = shuffledIndices(this.items.length, deriveSeed(this.seed, this.cycle));
    return perm.map((i) => this.items[i]);
  }
  next(): number {
    if (this.cursor >= this.#order.length) {
      this.cycle++;
      this.cursor = 0;
      this.#order = this.#shuffle();
    }
    return this.#order[this.cursor++];
  }
}

/** Salts of the run's random streams. */
const SALT = { clone: 0x636c6f6e, pool: 0x706f6f6c, cls: 0x636c73, step: 0x73746570, epoch: 0x65706f63 } as const;

/** `meta.json` of a Knockoff checkpoint. */
export interface KnockoffCheckpointMeta extends CheckpointMeta {
  /** "knockoff/1". */
  format: "knockoff/1";
  /** `query` while the transfer set grows (it is in the checkpoint), `train` after (it is in `<dir>/transfer`). */
  phase: "query" | "train";
  /** Query batches done. */
  step: number;
  /** Training epochs done. */
  epoch: number;
  /** Examples in the transfer set. */
  transferSize: number;
  /** Where the samplers stand: [cycle, cursor] of the random sampler or of each class. */
  samplers: [number, number][];
  /** The bandit's state (adaptive). */
  bandit?: BanditState;
  /** The rewards' running statistics and history (adaptive). */
  rewards?: RewardsState;
  /** The run's seed. */
  seed: number;
  /** The attack budget. */
  budget: number;
  /** The run's settings; a resume needs the same ones (all but `eval_every` and `checkpoint_every`). */
  settings: KnockoffSettings;
  /** The learning curve so far. */
  curve: CurvePoint[];
  /** Wall time of the run so far. */
  elapsedMs: number;
}

const FORMAT = "knockoff/1";

/**
 * The Knockoff Nets attack.
 *
 * @example
 * ```ts ignore
 * const surrogate = async () => toSignedRange(await loadDataset("fashion_mnist", "train"));
 * const attack = new KnockoffAttack({ strategy: "adaptive", epochs: 30 }, { surrogate });
 * const { clone, curve } = await attack.extract(blackBox, 30_000, { seed: 0, evaluate });
 * ```
 */
export class KnockoffAttack implements Attack {
  /** "knockoff", or the config entry's `name`. */
  readonly name: string;
  /** Resolved settings. */
  readonly settings: KnockoffSettings;
  readonly #opts: KnockoffOptions;

  /**
   * Resolves the settings of a (partial) config entry.
   *
   * @param config a (partial) `type: knockoff` entry (its `budget` is ignored)
   * @param opts the surrogate set
   */
  constructor(config: KnockoffConfigInput, opts: KnockoffOptions) {
    this.name = config.name ?? "knockoff";
    this.settings = knockoffSettings(config);
    this.#opts = opts;
  }

  /** Spends `budget` queries on surrogate images, then trains the clone on the answers. */
  async extract(blackBox: BlackBox, budget: number, ctx: AttackContext): Promise<AttackResult> {
    checkBudget("knockoff", budget);
    const s = this.settings;
    const bb = blackBox;
    const limit = Math.min(budget, bb.budget);
    const pool = await this.#opts.surrogate();
    checkPool(pool, bb, "knockoff: surrogate_dataset");
    const [h, w, c] = bb.imageShape;
    const k = bb.numClasses;
    const adaptive = s.strategy === "adaptive";

    // Samplers: one over the whole pool (random), or one per surrogate class (adaptive).
    const classes: number[] = [];
    const byClass = new Map<number, number[]>();
    for (let i = 0; i < pool.n; i++) {
      const y = pool.labels[i];
      if (!byClass.has(y)) byClass.set(y, []), classes.push(y);
      byClass.get(y)!.push(i);
    }
    classes.sort((a, b) => a - b);
    const samplers = adaptive
      ? classes.map((y) => new Cycler(Int32Array.from(byClass.get(y)!), deriveSeed(ctx.seed, SALT.cls, y)))
      : [new Cycler(Int32Array.from({ length: pool.n }, (_, i) => i), deriveSeed(ctx.seed, SALT.pool))];
    const bandit = new GradientBandit(classes.length, s.bandit_lr);
    const rewards = new KnockoffRewards(s.reward, k, s.div_window);

    const makeClone = this.#opts.makeClone ?? cloneFactory(s.clone_arch, bb.imageShape, k);
    const clone = makeClone(deriveSeed(ctx.seed, SALT.clone));
    const { optimizer, setLr } = makeOptimizer({
      optimizer: "sgd",
      lr: s.clone_lr,
      momentum: s.clone_momentum,
      weightDecay: s.clone_wd,
    });
    const trainer = makeTrainer(clone, optimizer, SOFT_CROSS_ENTROPY);
    let transfer = new TransferSet(bb.imageShape, k, Math.min(limit, 65_536));
    let phase: "query" | "train" = "query";
    let step = 0, epoch = 0;
    let curve: CurvePoint[] = [];
    let elapsedBefore = 0;
    let savedAt = "";
    let transferOnDisk = false; // whether <dir>/transfer holds the final transfer set
    const dir = ctx.checkpointDir;
    try {
      if (dir !== undefined) {
        const meta = await readCheckpointMeta<KnockoffCheckpointMeta>(dir);
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
          if (meta.samplers.length !== samplers.length) {
            throw new ResumeError(
              latest,
              `${meta.samplers.length} samplers, this surrogate set has ${samplers.length}`,
            );
          }
          const transferDir = meta.phase === "query" ? `${latest}/transfer` : `${dir}/transfer`;
          transfer = await loadTransferSet(transferDir, bb.imageShape, k, meta.transferSize);
          await copyWeightsFrom(clone, `${latest}/clone`);
          await loadOptimizerState(`${latest}/clone_optimizer`, optimizer);
          meta.samplers.forEach(([cycle, cursor], i) => {
            const fresh = new Cycler(samplers[i].items, samplers[i].seed, cycle, cursor);
            samplers[i] = fresh;
          });
          if (meta.bandit) bandit.restore(meta.bandit);
          if (meta.rewards) rewards.restore(meta.rewards);
          phase = meta.phase;
          step = meta.step;
          epoch = meta.epoch;
          curve = [...meta.curve];
          elapsedBefore = meta.elapsedMs;
          savedAt = `${phase}/${step}/${epoch}`;
          transferOnDisk = phase === "train";
        }
      }
      const t0 = performance.now();
      const elapsedMs = () => elapsedBefore + (performance.now() - t0);
      const evaluate = async () => {
        if (!ctx.evaluate || curve.at(-1)?.queries === bb.queries) return undefined;
        const cloneAcc = await ctx.evaluate(clone);
        curve.push({ queries: bb.queries, cloneAcc });
        return cloneAcc;
      };
      const save = async () => {
        if (dir === undefined || savedAt === `${phase}/${step}/${epoch}`) return;
        if (phase === "train" && !transferOnDisk) {
          await saveTransferSet(`${dir}/transfer`, transfer);
          transferOnDisk = true;
        }
        const meta: KnockoffCheckpointMeta = {
          format: FORMAT,
          queries: bb.queries,
          phase,
          step,
          epoch,
          transferSize: transfer.n,
          samplers: samplers.map((x) => [x.cycle, x.cursor]),
          ...(adaptive ? { bandit: bandit.state(), rewards: rewards.state() } : {}),
          seed: ctx.seed,
          budget,
          settings: s,
          curve,
          elapsedMs: elapsedMs(),
        };
        await commitCheckpoint(dir, meta, async (stage) => {
          await saveModel(clone, `${stage}/clone`);
          await saveOptimizerState(`${stage}/clone_optimizer`, optimizer);
          if (phase === "query") await saveTransferSet(`${stage}/transfer`, transfer);
        });
        savedAt = `${phase}/${step}/${epoch}`;
      };
      /** Whether the count crossed a multiple of `e` going from `from` to `to`. */
      const crossed = (from: number, to: number, e: number | undefined) =>
        e !== undefined && Math.floor(to / e) > Math.floor(from / e);

      // 1. Queries: the transfer set.
      while (phase === "query" && bb.queries < limit) {
        const n = Math.min(s.batch_size, limit - bb.queries);
        const rng = mulberry32(deriveSeed(ctx.seed, SALT.step, step));
        const actions = adaptive ? Array.from({ length: n }, () => bandit.sample(rng)) : [];
        const idx = adaptive
          ? actions.map((a) => samplers[a].next())
          : Array.from({ length: n }, () => samplers[0].next());
        const { images } = gatherBatch(pool, idx);
        const before = bb.queries;
        tf.tidy(() => {
          const x = tf.tensor4d(images, [n, h, w, c]);
          const y = queryTargets(bb, x);
          if (adaptive) {
            const yHat = tf.softmax(clone.apply(x, { training: false }) as tf.Tensor2D).dataSync() as Float32Array;
            const yv = y.dataSync() as Float32Array;
            for (let i = 0; i < n; i++) {
              bandit.update(
                actions[i],
                rewards.reward(yv.subarray(i * k, (i + 1) * k), yHat.subarray(i * k, (i + 1) * k)),
              );
            }
            trainer.step(x, y);
          }
          transfer.add(x, y);
        });
        step++;
        if (bb.queries >= limit) phase = "train";
        let cloneAcc: number | undefined;
        if (adaptive && crossed(before, bb.queries, s.eval_every) && bb.queries < limit) cloneAcc = await evaluate();
        if (crossed(before, bb.queries, s.checkpoint_every) || (before < limit && bb.queries >= limit)) await save();
        await ctx.onProgress?.({ queries: bb.queries, budget, iteration: step, cloneAcc, elapsedMs: elapsedMs() });
      }
      phase = "train";

      // 2. Training on the transfer set.
      for (; epoch < s.epochs;) {
        setLr(stepLr(s.clone_lr, epoch / s.epochs, s.lr_decay_at, s.lr_gamma));
        trainEpoch(trainer, transfer, s.batch_size, deriveSeed(ctx.seed, SALT.epoch, epoch));
        epoch++;
        if (s.checkpoint_every !== undefined && epoch < s.epochs) await save();
        await ctx.onProgress?.({ queries: bb.queries, budget, iteration: step + epoch, elapsedMs: elapsedMs() });
      }
      await evaluate();
      await save();
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
