/**
 * Model bundles: what a server loads. A bundle is a directory holding the
 * trained victim, and for MeCo the defensively trained target and its
 * perturbation network, with `bundle.json` describing them (image shape,
 * classes, accuracies, the MeCo settings, and where they came from):
 *
 * ```text
 * <bundle>/bundle.json
 * <bundle>/victim/{model.json,weights.bin}
 * <bundle>/meco/target/{model.json,weights.bin}     (when exported with MeCo)
 * <bundle>/meco/perturb/{model.json,weights.bin}
 * ```
 *
 * {@linkcode exportBundle} takes them from the runner's cell cache, training
 * whatever is not cached yet (a `smoke` profile trains a small one in
 * seconds), and writes the bundle atomically and owner-only.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { LoadedConfig, MecoDefenseConfig } from "../config/mod.ts";
import { defenseCell, mecoCellDir, victimCell } from "../experiments/cells.ts";
import { loadExperimentData } from "../experiments/data.ts";
import { commandLine, gitCommit } from "../experiments/provenance.ts";
import { CheckpointError, loadModel, renameIntoPlace, saveModel } from "../train/checkpoint.ts";

/** The format tag of `bundle.json`. */
export const BUNDLE_FORMAT = "meco-serve-bundle/1";

/** `bundle.json`. */
export interface BundleMeta {
  /** {@linkcode BUNDLE_FORMAT}. */
  format: string;
  /** Dataset the models were trained on. */
  dataset: string;
  /** Shape [h, w, c] of one image. */
  image_shape: [number, number, number];
  /** Number of classes. */
  num_classes: number;
  /** Victim architecture. */
  arch: string;
  /** Test accuracy of the undefended victim. */
  victim_acc: number;
  /** The MeCo nets, when exported: their training config and defended utility. */
  meco: { config: MecoDefenseConfig; acc: number; l1: number } | null;
  /** Where the models came from. */
  source: { config: string; profile: string; config_hash: string; seed: number; commit: string; command: string };
  /** ISO time of export. */
  created: string;
}

/** A loaded bundle; {@linkcode LoadedBundle.dispose} frees its models. */
export interface LoadedBundle {
  /** Its directory. */
  dir: string;
  /** `bundle.json`. */
  meta: BundleMeta;
  /** The undefended victim (logits). */
  victim: tf.LayersModel;
  /** MeCo's target and perturbation net, when the bundle has them. */
  meco?: { target: tf.LayersModel; perturb: tf.LayersModel };
  /** Frees every model. */
  dispose(): void;
}

/** Options of {@linkcode exportBundle}. */
export interface ExportOptions {
  /** Seed of the cells to export (default: the config's first). */
  seed?: number;
  /** Label of the meco defense entry to include (default: the first meco entry, if any; null: none). */
  meco?: string | null;
  /** Progress lines. */
  log?: (msg: string) => void;
}

/**
 * Writes the bundle of `loaded`'s victim (and MeCo nets) for `seed` to `out`,
 * from the runner's cache, training what is missing. The directory appears
 * whole or not at all.
 *
 * @example
 * ```ts ignore
 * const loaded = await loadConfig("configs/mnist_dfme.yaml", "smoke");
 * const meta = await exportBundle(loaded, "models/mnist_smoke");
 * ```
 */
export async function exportBundle(loaded: LoadedConfig, out: string, opts: ExportOptions = {}): Promise<BundleMeta> {
  const cfg = loaded.config;
  const log = opts.log ?? ((m: string) => console.log(m));
  const seed = opts.seed ?? cfg.seeds[0];
  const mecoEntries = cfg.defenses.filter((d): d is MecoDefenseConfig => d.type === "meco");
  let mecoCfg: MecoDefenseConfig | undefined;
  if (opts.meco === undefined) mecoCfg = mecoEntries[0];
  else if (opts.meco !== null) {
    mecoCfg = mecoEntries.find((d) => (d.name ?? d.type) === opts.meco);
    if (mecoCfg === undefined) {
      const have = mecoEntries.map((d) => d.name ?? d.type);
      throw new Error(
        `${loaded.source}: no meco defense labelled ${JSON.stringify(opts.meco)} ` +
          `(meco entries: ${have.length > 0 ? have.join(", ") : "none"})`,
      );
    }
  }
  const data = await loadExperimentData(cfg);
  const victim = await victimCell(cfg, seed, data, log);
  const meco = mecoCfg === undefined ? undefined : await defenseCell(cfg, mecoCfg, seed, victim, data, log);
  const meta: BundleMeta = {
    format: BUNDLE_FORMAT,
    dataset: cfg.dataset.name,
    image_shape: [data.train.height, data.train.width, data.train.channels],
    num_classes: data.train.numClasses,
    arch: cfg.victim.arch,
    victim_acc: victim.acc,
    meco: mecoCfg === undefined || meco === undefined ? null : { config: mecoCfg, acc: meco.acc, l1: meco.l1 },
    source: {
      config: loaded.source,
      profile: loaded.profile,
      config_hash: loaded.hash,
      seed,
      commit: await gitCommit(),
      command: commandLine(),
    },
    created: new Date().toISOString(),
  };
  let mecoModels: BundleModels["meco"];
  try {
    // The cell's models are the cached target and h; reload them to save (the cell owns its copies).
    if (meco !== undefined) mecoModels = await mecoModelsOf(cfg, mecoCfg!, seed);
    await writeBundle(out, meta, { victim: victim.model, meco: mecoModels });
  } finally {
    mecoModels?.target.dispose();
    mecoModels?.perturb.dispose();
    meco?.dispose();
    victim.model.dispose();
  }
  return meta;
}

/** The models of a bundle. */
export interface BundleModels {
  /** The undefended victim. */
  victim: tf.LayersModel;
  /** MeCo's target and perturbation net, when exported. */
  meco?: { target: tf.LayersModel; perturb: tf.LayersModel };
}

/** Makes every file under `dir` mode 0600 and every directory (itself included) 0700. */
async function ownerOnly(dir: string): Promise<void> {
  await Deno.chmod(dir, 0o700);
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) await ownerOnly(p);
    else await Deno.chmod(p, 0o600);
  }
}

/**
 * Writes the bundle directory `out` (`bundle.json` and the models); it
 * appears whole or not at all, owner-only (files 0600, directories 0700):
 * it holds the very models the defense protects. It is written inside a
 * fresh 0700 directory, so no other user can open a file of it at any time.
 */
export async function writeBundle(out: string, meta: BundleMeta, models: BundleModels): Promise<void> {
  const dir = out.replace(/\/+$/, "");
  const tmp = `${dir}.tmp-${crypto.randomUUID()}`;
  await Deno.mkdir(dir.replace(/\/?[^/]*$/, "") || ".", { recursive: true });
  await Deno.mkdir(tmp, { mode: 0o700 });
  try {
    await Deno.chmod(tmp, 0o700);
    await saveModel(models.victim, `${tmp}/victim`);
    if (models.meco !== undefined) {
      await saveModel(models.meco.target, `${tmp}/meco/target`);
      await saveModel(models.meco.perturb, `${tmp}/meco/perturb`);
    }
    await Deno.writeTextFile(`${tmp}/bundle.json`, JSON.stringify(meta, null, 2) + "\n");
    await ownerOnly(tmp);
    await renameIntoPlace(tmp, dir);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

async function mecoModelsOf(
  cfg: LoadedConfig["config"],
  d: MecoDefenseConfig,
  seed: number,
): Promise<{ target: tf.LayersModel; perturb: tf.LayersModel }> {
  const dir = await mecoCellDir(cfg, d, seed);
  return { target: await loadModel(`${dir}/target`), perturb: await loadModel(`${dir}/perturb`) };
}

/**
 * Loads the bundle in `dir`.
 *
 * @throws {CheckpointError} naming the missing or malformed file
 */
export async function loadBundle(dir: string): Promise<LoadedBundle> {
  let meta: BundleMeta;
  try {
    meta = JSON.parse(await Deno.readTextFile(`${dir}/bundle.json`));
  } catch (e) {
    throw new CheckpointError(
      `${dir}/bundle.json`,
      e instanceof Deno.errors.NotFound
        ? "missing (write a bundle with `deno task export-model`)"
        : `unreadable: ${e instanceof Error ? e.message : e}`,
    );
  }
  if (meta.format !== BUNDLE_FORMAT) {
    throw new CheckpointError(`${dir}/bundle.json`, `format ${JSON.stringify(meta.format)}, expected ${BUNDLE_FORMAT}`);
  }
  const shape = meta.image_shape;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new CheckpointError(`${dir}/bundle.json`, `image_shape must be [h, w, c], found ${JSON.stringify(shape)}`);
  }
  if (!Number.isInteger(meta.num_classes) || meta.num_classes < 2) {
    throw new CheckpointError(`${dir}/bundle.json`, `num_classes must be an integer ≥ 2, found ${meta.num_classes}`);
  }
  const victim = await loadModel(`${dir}/victim`);
  let meco: LoadedBundle["meco"];
  if (meta.meco !== null) {
    try {
      meco = { target: await loadModel(`${dir}/meco/target`), perturb: await loadModel(`${dir}/meco/perturb`) };
    } catch (e) {
      victim.dispose();
      throw e;
    }
  }
  return {
    dir,
    meta,
    victim,
    meco,
    dispose: () => {
      victim.dispose();
      meco?.target.dispose();
      meco?.perturb.dispose();
    },
  };
}
