/**
 * The driver shared by iterative attacks (DFME, MAZE, DFMS-HL, the adaptive
 * attacker): run iterations while the next one fits in the budget, evaluate
 * the clone every `eval_every` queries (with the run's own measurements, if
 * any, on the same curve point), checkpoint every `checkpoint_every` queries
 * and at the end, and resume from the last checkpoint. An attack supplies its
 * state as an {@linkcode IterativeRun}; the driver owns the curve, the timing
 * and the checkpoint's `meta.json` ({@linkcode LoopCheckpointMeta}, one
 * format for every iterative attack).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { loadModel } from "../train/checkpoint.ts";
import type { BlackBox } from "../victim/black_box.ts";
import type { AttackContext, AttackResult, CurvePoint } from "./attack.ts";
import {
  type CheckpointMeta,
  commitCheckpoint,
  latestCheckpoint,
  readCheckpointMeta,
  ResumeError,
  trainingSettingsKey,
} from "./checkpoint.ts";

/** One attack run as the driver sees it. */
export interface IterativeRun {
  /** The clone being trained (logits). */
  readonly clone: tf.LayersModel;
  /** Iterations done. */
  iteration: number;
  /** Iterations the budget allows (learning-rate schedules run over them). */
  readonly totalIterations: number;
  /** Black-box queries one iteration spends (exactly). */
  readonly queriesPerIteration: number;
  /** Work done once before the first iteration of a fresh run (not after a resume); spends no queries. */
  prepare?(): Promise<void>;
  /** One iteration; advances `iteration`. */
  step(): void | Promise<void>;
  /**
   * Measurements beside the clone's accuracy, taken at every evaluation point
   * and recorded as the curve point's `diagnostics` (e.g. DFME's estimate
   * cosine). Spends no queries of the black box and changes no state the
   * attack goes on with; undefined records none.
   */
  diagnostics?(): Record<string, number> | undefined | Promise<Record<string, number> | undefined>;
  /** Writes the models, optimizers and any other state into the staging directory `stage`. */
  save(stage: string): Promise<void>;
  /** Reads back what {@linkcode save} wrote in `dir`. */
  restore(dir: string): Promise<void>;
  /** Frees everything the run owns, except the clone when `keepClone`. */
  dispose(keepClone: boolean): void;
}

/** `meta.json` of a checkpoint written by {@linkcode runAttackLoop}. */
export interface LoopCheckpointMeta extends CheckpointMeta {
  /** Iterations done. */
  iteration: number;
  /** The run's seed. */
  seed: number;
  /** The attack budget. */
  budget: number;
  /** The settings that determine the computation (JSON, keys sorted). */
  settings: string;
  /** The learning curve so far. */
  curve: CurvePoint[];
  /** Wall time of the run so far. */
  elapsedMs: number;
}

/** What the driver needs to know besides the run. */
export interface LoopOptions {
  /** Attack name, for messages. */
  name: string;
  /** Checkpoint format, e.g. "maze/1". */
  format: string;
  /** The attack's settings; all but `eval_every` and `checkpoint_every` must match on resume. */
  settings: Record<string, unknown>;
  /** Evaluate the clone every this many queries (and at the end). */
  evalEvery?: number;
  /** Checkpoint every this many queries (and at the end). */
  checkpointEvery?: number;
  /**
   * Reads a checkpoint's meta written in an older format of the same attack whose saved state files are the same:
   * the meta in this format, or undefined when `meta` is not such a format (it is then refused).
   */
  migrate?: (meta: CheckpointMeta & Record<string, unknown>) => LoopCheckpointMeta | undefined;
}

/** The next multiple of `every` strictly above `q`. */
export function nextMultiple(q: number, every: number): number {
  return (Math.floor(q / every) + 1) * every;
}

/** Checks `budget` is a positive integer; the message names the attack. */
export function checkBudget(name: string, budget: number): void {
  if (!Number.isSafeInteger(budget) || budget < 1) {
    throw new RangeError(`${name}: budget must be a positive integer, got ${budget}`);
  }
}

/**
 * Copies the weights saved in `dir` (by `saveModel`) into `model`.
 *
 * @throws {ResumeError} when the saved weights do not fit the model
 */
export async function copyWeightsFrom(model: tf.LayersModel, dir: string): Promise<void> {
  const saved = await loadModel(dir);
  try {
    const ws = saved.getWeights();
    const want = model.getWeights().map((w) => w.shape.join("×")).join(",");
    const have = ws.map((w) => w.shape.join("×")).join(",");
    if (want !== have) throw new ResumeError(dir, `saved weights [${have}] do not fit the model [${want}]`);
    model.setWeights(ws);
  } finally {
    saved.dispose();
  }
}

/**
 * Runs `run` against `blackBox` until no further iteration fits in
 * `min(budget, blackBox.budget)`, with evaluation, progress, checkpoints and
 * resume as {@linkcode AttackContext} describes. Disposes the run (keeping the
 * clone on success).
 *
 * @throws {ResumeError} when the checkpoint in `ctx.checkpointDir` belongs to
 * another format, seed, budget or settings, or the black box's count differs
 */
export async function runAttackLoop(
  run: IterativeRun,
  blackBox: BlackBox,
  budget: number,
  ctx: AttackContext,
  opts: LoopOptions,
): Promise<AttackResult> {
  const limit = Math.min(budget, blackBox.budget);
  const settings = trainingSettingsKey(opts.settings);
  let curve: CurvePoint[] = [];
  let elapsedBefore = 0;
  let savedAt = -1;
  try {
    let meta: LoopCheckpointMeta | undefined;
    if (ctx.checkpointDir !== undefined) meta = await readCheckpointMeta<LoopCheckpointMeta>(ctx.checkpointDir);
    if (meta !== undefined && meta.format !== opts.format && opts.migrate !== undefined) {
      meta = opts.migrate(meta as unknown as CheckpointMeta & Record<string, unknown>) ?? meta;
    }
    if (meta !== undefined) {
      const dir = latestCheckpoint(ctx.checkpointDir!);
      if (meta.format !== opts.format) throw new ResumeError(dir, `format ${meta.format}, expected ${opts.format}`);
      if (meta.seed !== ctx.seed) {
        throw new ResumeError(dir, `checkpoint of seed ${meta.seed}, this run has ${ctx.seed}`);
      }
      if (meta.budget !== budget) {
        throw new ResumeError(dir, `checkpoint of a run with budget ${meta.budget}, this run has ${budget}`);
      }
      if (meta.settings !== settings) throw new ResumeError(dir, `settings differ: checkpoint ${meta.settings}`);
      if (blackBox.queries !== meta.queries) {
        throw new ResumeError(
          dir,
          `the checkpoint has spent ${meta.queries} queries but the black box counts ${blackBox.queries}; ` +
            `build the BlackBox with { spent: await checkpointQueries(dir) }`,
        );
      }
      await run.restore(dir);
      run.iteration = meta.iteration;
      curve = [...meta.curve];
      elapsedBefore = meta.elapsedMs;
      savedAt = meta.queries;
    }
    const t0 = performance.now();
    const elapsedMs = () => elapsedBefore + (performance.now() - t0);
    if (meta === undefined) await run.prepare?.();
    let nextEval = opts.evalEvery ? nextMultiple(blackBox.queries, opts.evalEvery) : Infinity;
    let nextSave = opts.checkpointEvery ? nextMultiple(blackBox.queries, opts.checkpointEvery) : Infinity;
    const evaluate = async () => {
      const cloneAcc = await ctx.evaluate!(run.clone);
      const point: CurvePoint = { queries: blackBox.queries, cloneAcc };
      const diagnostics = await run.diagnostics?.();
      if (diagnostics !== undefined) point.diagnostics = diagnostics;
      curve.push(point);
      return cloneAcc;
    };
    const save = async () => {
      const m: LoopCheckpointMeta = {
        format: opts.format,
        queries: blackBox.queries,
        iteration: run.iteration,
        seed: ctx.seed,
        budget,
        settings,
        curve,
        elapsedMs: elapsedMs(),
      };
      await commitCheckpoint(ctx.checkpointDir!, m, (stage) => run.save(stage));
      savedAt = blackBox.queries;
    };
    while (run.iteration < run.totalIterations && blackBox.queries + run.queriesPerIteration <= limit) {
      const before = blackBox.queries;
      await run.step();
      if (blackBox.queries - before !== run.queriesPerIteration) {
        throw new Error(
          `${opts.name}: an iteration spent ${blackBox.queries - before} queries, expected ${run.queriesPerIteration}`,
        );
      }
      let cloneAcc: number | undefined;
      if (blackBox.queries >= nextEval) {
        if (ctx.evaluate) cloneAcc = await evaluate();
        nextEval = nextMultiple(blackBox.queries, opts.evalEvery!);
      }
      if (blackBox.queries >= nextSave) {
        if (ctx.checkpointDir !== undefined) await save();
        nextSave = nextMultiple(blackBox.queries, opts.checkpointEvery!);
      }
      await ctx.onProgress?.({
        queries: blackBox.queries,
        budget,
        iteration: run.iteration,
        cloneAcc,
        elapsedMs: elapsedMs(),
      });
    }
    if (ctx.evaluate && curve.at(-1)?.queries !== blackBox.queries) await evaluate();
    if (ctx.checkpointDir !== undefined && savedAt !== blackBox.queries) await save();
    run.dispose(true);
    return { clone: run.clone, queries: blackBox.queries, curve };
  } catch (e) {
    run.dispose(false);
    throw e;
  }
}
