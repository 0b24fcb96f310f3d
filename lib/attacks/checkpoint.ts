/**
 * Attack checkpoints: one directory `<checkpointDir>/latest` holding every
 * part of an attack's state (models, optimizers, `meta.json`), replaced as a
 * whole. Parts are written into a staging directory that is then renamed into
 * place, so a crash leaves either the previous checkpoint or the new one,
 * never a mix.
 *
 * The runner reads how many queries a checkpoint has spent with
 * {@linkcode checkpointQueries} and builds the resumed run's `BlackBox` with
 * `spent` set to it; the attack refuses to resume against a black box whose
 * count differs, so no attack can under-count across a resume.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { loadTensors, saveTensors } from "../train/checkpoint.ts";
import { pathExists } from "../data/read_bytes.ts";

/** A checkpoint that cannot be resumed from; names the directory and the fault. */
export class ResumeError extends Error {
  /**
   * An error whose message names the directory and the fault.
   *
   * @param dir the checkpoint directory
   * @param fault what is wrong
   */
  constructor(readonly dir: string, readonly fault: string) {
    super(`cannot resume from ${dir}: ${fault}`);
    this.name = "ResumeError";
  }
}

/** The fields every attack checkpoint's `meta.json` has. */
export interface CheckpointMeta {
  /** Attack and layout version, e.g. "dfme/2". */
  format: string;
  /** Black-box queries spent when the checkpoint was written. */
  queries: number;
}

const LATEST = "latest";

/** The directory of the current checkpoint inside `checkpointDir`. */
export function latestCheckpoint(checkpointDir: string): string {
  return `${checkpointDir.replace(/\/+$/, "")}/${LATEST}`;
}

/**
 * Writes a new checkpoint: `write(stage)` fills a fresh staging directory
 * (models, tensors, ...), `meta` goes to `meta.json`, and the stage then
 * replaces `<checkpointDir>/latest` by rename.
 */
export async function commitCheckpoint(
  checkpointDir: string,
  meta: CheckpointMeta,
  write: (stage: string) => Promise<void>,
): Promise<void> {
  const latest = latestCheckpoint(checkpointDir);
  const stage = `${latest}.tmp-${crypto.randomUUID()}`;
  await Deno.mkdir(stage, { recursive: true });
  try {
    await write(stage);
    await Deno.writeTextFile(`${stage}/meta.json`, JSON.stringify(meta));
    const old = `${latest}.old`;
    if (await pathExists(old)) await Deno.remove(old, { recursive: true });
    if (await pathExists(latest)) await Deno.rename(latest, old);
    await Deno.rename(stage, latest);
    await Deno.remove(old, { recursive: true }).catch(() => {});
  } catch (e) {
    await Deno.remove(stage, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * The metadata of the checkpoint in `checkpointDir`, or `undefined` when there
 * is none. Completes a replacement interrupted between its two renames and
 * removes abandoned staging directories.
 */
export async function readCheckpointMeta<M extends CheckpointMeta>(checkpointDir: string): Promise<M | undefined> {
  const latest = latestCheckpoint(checkpointDir);
  if (!(await pathExists(checkpointDir))) return undefined;
  if (!(await pathExists(latest)) && (await pathExists(`${latest}.old`))) await Deno.rename(`${latest}.old`, latest);
  for await (const e of Deno.readDir(checkpointDir)) {
    if (e.isDirectory && e.name.startsWith(`${LATEST}.tmp-`)) {
      await Deno.remove(`${checkpointDir}/${e.name}`, { recursive: true }).catch(() => {});
    }
  }
  let text: string;
  try {
    text = await Deno.readTextFile(`${latest}/meta.json`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  let meta: M;
  try {
    meta = JSON.parse(text);
  } catch (e) {
    throw new ResumeError(latest, `meta.json is not JSON: ${e}`);
  }
  if (typeof meta?.format !== "string" || !Number.isSafeInteger(meta.queries) || meta.queries < 0) {
    throw new ResumeError(latest, "meta.json lacks format or a non-negative integer queries");
  }
  return meta;
}

/**
 * Queries already spent by the run checkpointed in `checkpointDir` (0 when
 * there is no checkpoint): the `spent` the runner gives the resumed run's
 * `BlackBox`.
 *
 * @example
 * ```ts ignore
 * const spent = await checkpointQueries(dir);
 * const bb = new BlackBox(defense, { imageShape, numClasses, budget, spent });
 * await attack.extract(bb, budget, { seed, checkpointDir: dir });
 * ```
 */
export async function checkpointQueries(checkpointDir: string | undefined): Promise<number> {
  if (checkpointDir === undefined) return 0;
  return (await readCheckpointMeta(checkpointDir))?.queries ?? 0;
}

/**
 * Saves an optimizer's state (`getWeights`) to `dir` with `saveTensors`,
 * disposing the step-count scalar `getWeights` creates (lib/train's
 * tfjs leaves it allocated, one tensor per checkpoint).
 */
export async function saveOptimizerState(dir: string, optimizer: tf.Optimizer): Promise<void> {
  const weights = await optimizer.getWeights();
  try {
    await saveTensors(dir, Object.fromEntries(weights.map((w) => [w.name, w.tensor])));
  } finally {
    // The first entry is the step count, made fresh by getWeights; the rest are the optimizer's own variables.
    if (weights.length > 0 && weights[0].name === "iter") weights[0].tensor.dispose();
  }
}

/**
 * Restores an optimizer's state saved by {@linkcode saveOptimizerState} and
 * disposes the loaded tensors (the optimizer keeps its own references).
 */
export async function loadOptimizerState(dir: string, optimizer: tf.Optimizer): Promise<void> {
  const { tensors } = await loadTensors(dir);
  try {
    await optimizer.setWeights(Object.entries(tensors).map(([name, tensor]) => ({ name, tensor })));
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/**
 * The settings that change what a run computes, as a canonical string (the
 * reporting fields `eval_every` and `checkpoint_every` dropped, keys sorted):
 * what a checkpoint must match to be resumed.
 */
export function trainingSettingsKey(s: object): string {
  const rest = Object.entries(s).filter(([k]) => k !== "eval_every" && k !== "checkpoint_every");
  return JSON.stringify(Object.fromEntries(rest.sort(([a], [b]) => a.localeCompare(b))));
}
