/**
 * The cells of an experiment, each cached on disk: a trained victim per seed,
 * a defended victim per (defense, seed), and an attack row per
 * (defense, attack, seed).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { DefenseConfig, ExperimentConfig, MecoDefenseConfig } from "../config/mod.ts";
import { augmenter, deriveSeed, subset } from "../data/mod.ts";
import { buildDefense, type DefenseBuildOptions } from "../defenses/build.ts";
import type { Defense } from "../defenses/defense.ts";
import type { MecoModels } from "../defenses/meco.ts";
import { undefended } from "../defenses/undefended.ts";
import { type MecoEpochStats, trainMeco } from "../meco/train.ts";
import { utility } from "../metrics/utility.ts";
import { PERTURBATION_NET_VERSION, perturbationNet } from "../models/perturbation.ts";
import { buildClassifier } from "../models/registry.ts";
import { loadModel, saveModel } from "../train/checkpoint.ts";
import { fit } from "../train/fit.ts";
import { cacheRoot, cellDir, cellKey, readJson, writeJson } from "./cache.ts";
import type { ExperimentData } from "./data.ts";
import { acquireLock, withLock } from "./lock.ts";
import type { ProgressSink } from "./progress.ts";
import { provenanceNow, type RunProvenance } from "./provenance.ts";

/** What a MeCo cell records besides its model files. */
interface MecoCellMeta {
  /** The defended victim's test accuracy. */
  acc: number;
  /** Mean L1 distance between defended and undefended answers. */
  l1: number;
  /** Training and evaluation time. */
  minutes: number;
  /** RMS per pixel of the last epoch's DRO (SVGD) displacement (absent in cells cached before it was recorded). */
  svgd_rms?: number;
  /** RMS per pixel of h's displacement in the last epoch. */
  h_rms?: number;
  /** The run that trained it (absent in cells cached before it was recorded). */
  provenance?: RunProvenance;
}
/** A line of progress. */
export type Log = (msg: string) => void;

/** A trained victim. */
export interface VictimCell {
  /** The undefended victim (logits). */
  model: tf.LayersModel;
  /** Its test accuracy. */
  acc: number;
  /** Minutes spent training it (when it was computed). */
  minutes: number;
}

function imageShapeOf(data: ExperimentData): [number, number, number] {
  return [data.train.height, data.train.width, data.train.channels];
}

/** What {@linkcode buildDefense} needs for a cell of `cfg` besides the entry and the victim. */
function buildOptions(
  cfg: ExperimentConfig,
  data: ExperimentData,
  seed: number,
  meco?: MecoModels,
): DefenseBuildOptions {
  return {
    seed,
    imageShape: imageShapeOf(data),
    numClasses: data.train.numClasses,
    arch: cfg.victim.arch,
    ...(meco !== undefined ? { meco } : {}),
  };
}

/** Trains (or loads from the cache) the victim of `seed`. */
export async function victimCell(
  cfg: ExperimentConfig,
  seed: number,
  data: ExperimentData,
  log: Log,
): Promise<VictimCell> {
  const dir = await victimCellDir(cfg, seed);
  const cached = async (): Promise<VictimCell | undefined> => {
    const meta = await readJson<{ acc: number; minutes: number }>(`${dir}/meta.json`);
    if (meta === undefined) return undefined;
    log(`victim seed ${seed}: cached (${dir})`);
    return { model: await loadModel(`${dir}/model`), ...meta };
  };
  // Another worker may be training it: wait for its lock, then use what it cached.
  return await cached() ??
    await withLock(`${dir}.lock`, async () => await cached() ?? await trainVictimInto(dir, cfg, seed, data, log), {
      log,
    });
}

/** The cache directory of the victim of `seed` (model/, meta.json). */
export async function victimCellDir(cfg: ExperimentConfig, seed: number): Promise<string> {
  return `${cacheRoot()}/${await cellKey("victim", { dataset: cfg.dataset, victim: cfg.victim, seed })}`;
}

async function trainVictimInto(
  dir: string,
  cfg: ExperimentConfig,
  seed: number,
  data: ExperimentData,
  log: Log,
): Promise<VictimCell> {
  const t0 = performance.now();
  const model = buildClassifier(cfg.victim.arch, {
    seed: deriveSeed(seed, 1),
    inputShape: imageShapeOf(data),
    classes: data.train.numClasses,
    width: cfg.victim.width,
  });
  const t = cfg.victim.train;
  await fit(model, data.train, {
    epochs: t.epochs,
    batchSize: t.batch_size,
    optimizer: t.optimizer,
    lr: t.lr,
    momentum: t.momentum,
    weightDecay: t.weight_decay,
    lrMilestones: t.lr_milestones,
    lrGamma: t.lr_gamma,
    // Images are in [-1, 1]: pad with -1 (black), as zero-padding does on [0, 1] pixels before normalisation.
    augment: t.augment === undefined
      ? undefined
      : augmenter({ cropPadding: t.augment.crop_padding, flip: t.augment.flip, fill: -1 }, deriveSeed(seed, 9)),
    seed: deriveSeed(seed, 2),
    onEpoch: (e, loss) => log(`victim seed ${seed}: epoch ${e + 1}/${t.epochs} loss ${loss.toFixed(4)}`),
  });
  const u = utility(undefended(model).predict, undefended(model).predict, data.test, cfg.eval.batch_size);
  const minutes = (performance.now() - t0) / 60000;
  await saveModel(model, `${dir}/model`);
  await writeJson(`${dir}/meta.json`, { acc: u.acc, minutes });
  log(`victim seed ${seed}: test accuracy ${(u.acc * 100).toFixed(2)}% (${minutes.toFixed(1)} min)`);
  return { model, acc: u.acc, minutes };
}

/** Salt of the seed of a cell's {@linkcode DefenseCell.observer} (apart from the attack's defense, 6 and 7). */
const OBSERVER_SALT = 17;

/** A defended victim, ready to sit behind a BlackBox. */
export interface DefenseCell {
  /** The defense the attack's black box holds (built by `buildDefense`). */
  defense: Defense;
  /**
   * A second instance of the same defense with its own random stream, for measurements outside the attack (DFME's
   * diagnostics): querying it leaves the attack's answers as they would be without the measurements.
   */
  observer: Defense;
  /**
   * The target behind the defense, undefended (the victim, or MeCo's trained target without h): what answers the
   * zeroth-order estimate's queries under the official evaluation protocol (`estimation: undefended`) only.
   */
  undefended: Defense;
  /** The model behind the defense (the victim, or MeCo's trained target), logits; the cell owns or borrows it. */
  target: tf.LayersModel;
  /** Defended test accuracy. */
  acc: number;
  /** Mean L1 distance of the defended outputs from the same target's clean outputs. */
  l1: number;
  /** Minutes spent building it. */
  minutes: number;
  /** MeCo: RMS per pixel of the last epoch's DRO (SVGD) displacement. */
  svgd_rms?: number;
  /** MeCo: RMS per pixel of h's displacement in the last epoch. */
  h_rms?: number;
  /** MeCo: the run that trained it, when recorded (other defenses are built by the run that uses them). */
  provenance?: RunProvenance;
  /** Frees the models this cell owns. */
  dispose: () => void;
}

/** Label of a defense entry (its `name`, else its type; `none` is "undefended"). */
export function defenseLabel(d: DefenseConfig): string {
  return d.name ?? (d.type === "none" ? "undefended" : d.type);
}

/**
 * An entry without its `name` label: labels only name rows, so two configs
 * that label the same settings differently share cached cells.
 */
export function unlabeled<T extends { name?: string }>(entry: T): Omit<T, "name"> {
  const { name: _name, ...rest } = entry;
  return rest;
}

/**
 * Builds (or loads) the defense `d` around the victim of `seed`. Every defense
 * is built by {@linkcode buildDefense}; MeCo's cell first trains (or loads
 * from the cache) its target and perturbation network.
 */
export async function defenseCell(
  cfg: ExperimentConfig,
  d: DefenseConfig,
  seed: number,
  victim: VictimCell,
  data: ExperimentData,
  log: Log,
  progress?: ProgressSink,
): Promise<DefenseCell> {
  if (d.type === "none") {
    const plain = buildDefense(d, victim.model, buildOptions(cfg, data, deriveSeed(seed, 7)));
    return {
      defense: plain,
      observer: plain, // deterministic: nothing to keep apart
      undefended: plain,
      target: victim.model,
      acc: victim.acc,
      l1: 0,
      minutes: 0,
      dispose: () => {},
    };
  }
  if (d.type === "meco") return await mecoCell(cfg, d, seed, victim, data, log, progress);
  return outputDefenseCell(cfg, d, seed, victim, data, log);
}

/** An output-side defense (randp, mad, grad, postprocessors) around the victim; utility measured on the test set. */
function outputDefenseCell(
  cfg: ExperimentConfig,
  d: DefenseConfig,
  seed: number,
  victim: VictimCell,
  data: ExperimentData,
  log: Log,
): DefenseCell {
  const t0 = performance.now();
  const opts = buildOptions(cfg, data, deriveSeed(seed, 7));
  const measured = buildDefense(d, victim.model, opts);
  let u: { acc: number; l1: number };
  try {
    u = utility(measured.predict, undefended(victim.model).predict, data.test, cfg.eval.batch_size);
  } finally {
    measured.dispose();
  }
  // A fresh instance (same seed) for the attack, so its noise stream does not depend on the evaluation.
  const defense = buildDefense(d, victim.model, opts);
  const observer = buildDefense(d, victim.model, buildOptions(cfg, data, deriveSeed(seed, OBSERVER_SALT)));
  const minutes = (performance.now() - t0) / 60000;
  log(`${defenseLabel(d)} seed ${seed}: defended accuracy ${(u.acc * 100).toFixed(2)}%, L1 ${u.l1.toFixed(4)}`);
  return {
    defense,
    undefended: undefended(victim.model),
    target: victim.model,
    acc: u.acc,
    l1: u.l1,
    minutes,
    observer,
    dispose: () => {
      defense.dispose();
      observer.dispose();
    },
  };
}

/** The cache directory of the MeCo cell (target/, perturb/, meta.json) of `d` and `seed`. */
export function mecoCellDir(cfg: ExperimentConfig, d: MecoDefenseConfig, seed: number): Promise<string> {
  const parts = (defense: unknown) => ({
    dataset: cfg.dataset,
    victim: cfg.victim,
    defense,
    seed,
    h: PERTURBATION_NET_VERSION,
  });
  return cellDir("meco", parts(unlabeled(d)), "meta.json", d.name !== undefined ? parts(d) : undefined);
}

async function mecoCell(
  cfg: ExperimentConfig,
  d: MecoDefenseConfig,
  seed: number,
  victim: VictimCell,
  data: ExperimentData,
  log: Log,
  progress?: ProgressSink,
): Promise<DefenseCell> {
  const dir = await mecoCellDir(cfg, d, seed);
  const shape = imageShapeOf(data);
  let meta = await readJson<MecoCellMeta>(`${dir}/meta.json`);
  let target: tf.LayersModel, perturb: tf.LayersModel;
  // Another worker may be training it: wait for its lock, then use what it cached.
  const lock = meta === undefined ? await acquireLock(`${dir}.lock`, { log }) : undefined;
  try {
    if (lock !== undefined) meta = await readJson<MecoCellMeta>(`${dir}/meta.json`);
    if (meta !== undefined) {
      log(`${defenseLabel(d)} seed ${seed}: cached (${dir})`);
      target = await loadModel(`${dir}/target`);
      perturb = await loadModel(`${dir}/perturb`);
    } else {
      const t0 = performance.now();
      target = buildClassifier(cfg.victim.arch, {
        seed: deriveSeed(seed, 1),
        inputShape: shape,
        classes: data.train.numClasses,
        width: cfg.victim.width,
      });
      if (d.init === "pretrained") target.setWeights(victim.model.getWeights());
      perturb = perturbationNet({ imageShape: shape, width: d.width, bound: d.bound, seed: deriveSeed(seed, 3) });
      const train = d.train_subset !== undefined && d.train_subset < data.train.n
        ? subset(data.train, d.train_subset, { seed: deriveSeed(seed, 8) })
        : data.train;
      const steps = Math.ceil(train.n / d.batch_size) * d.epochs;
      const every = Math.max(1, Math.ceil(steps / 10));
      let lastEpoch: MecoEpochStats | undefined;
      const out = await trainMeco(target, perturb, train, {
        gamma: d.gamma,
        q: d.q,
        alpha: d.alpha,
        sigma: d.sigma,
        bound: d.bound,
        width: d.width,
        epochs: d.epochs,
        batchSize: d.batch_size,
        lr: d.lr,
        variant: d.variant,
        seed: deriveSeed(seed, 4),
        onStep: (s, total) => {
          const task = {
            label: `${defenseLabel(d)} training seed ${seed}`,
            unit: "steps",
            done: s,
            total,
            resumedFrom: 0,
            sessionMs: performance.now() - t0,
          };
          if (progress !== undefined) {
            // onStep is synchronous: a display that fails is reported, never left unhandled.
            const shown = s === total
              ? progress.end(task, `trained in ${(task.sessionMs / 60000).toFixed(1)} min`)
              : progress.update(task);
            Promise.resolve(shown).catch((e) => log(`progress display failed: ${e}`));
          } else if (s % every === 0 || s === total) {
            log(
              `${defenseLabel(d)} seed ${seed}: step ${s}/${total} (${
                ((performance.now() - t0) / 60000).toFixed(1)
              } min)`,
            );
          }
        },
        onEpoch: (e, s) => {
          lastEpoch = s;
          log(
            `${defenseLabel(d)} seed ${seed}: epoch ${e + 1}/${d.epochs} ce ${s.ce.toFixed(4)} l1 ${s.l1.toFixed(4)} ` +
              `SVGD step ${s.svgdRms.toExponential(2)} RMS/pixel, h ${s.hRms.toFixed(3)}`,
          );
        },
      });
      perturb = out.perturb;
      const defense = buildDefense(d, victim.model, buildOptions(cfg, data, deriveSeed(seed, 5), { target, perturb }));
      const u = utility(defense.predict, undefended(target).predict, data.test, cfg.eval.batch_size);
      meta = {
        acc: u.acc,
        l1: u.l1,
        minutes: (performance.now() - t0) / 60000,
        // How far the last epoch's DRO (SVGD) steps and h moved the images, RMS per pixel.
        ...(lastEpoch ? { svgd_rms: lastEpoch.svgdRms, h_rms: lastEpoch.hRms } : {}),
        provenance: provenanceNow(),
      };
      await saveModel(target, `${dir}/target`);
      await saveModel(perturb, `${dir}/perturb`);
      await writeJson(`${dir}/meta.json`, meta);
      log(`${defenseLabel(d)} seed ${seed}: defended accuracy ${(u.acc * 100).toFixed(2)}%, L1 ${u.l1.toFixed(4)}`);
    }
  } finally {
    await lock?.release();
  }
  const defense = buildDefense(d, victim.model, buildOptions(cfg, data, deriveSeed(seed, 6), { target, perturb }));
  const observer = buildDefense(
    d,
    victim.model,
    buildOptions(cfg, data, deriveSeed(seed, OBSERVER_SALT), { target, perturb }),
  );
  return {
    defense,
    observer,
    undefended: undefended(target),
    target,
    ...meta,
    dispose: () => {
      defense.dispose();
      observer.dispose();
      target.dispose();
      perturb.dispose();
    },
  };
}
