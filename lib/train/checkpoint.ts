/**
 * Checkpoints on disk. tfjs has no file-system IOHandler without tfjs-node:
 * {@linkcode fileHandler} is one (model.json + weights.bin, as tfjs-node
 * writes them), and {@linkcode saveTensors} stores any named tensors (optimizer
 * state, attack state) with a JSON side-car. Writes are atomic: files go to a
 * temporary directory that is renamed into place, so a crash never leaves a
 * half-written checkpoint.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { pathExists } from "../data/read_bytes.ts";
import "../models/batch_norm.ts"; // registers MecoBatchNorm for loadModel

/** Raised for a missing or malformed checkpoint; names the path and the fault. */
export class CheckpointError extends Error {
  /** @param path the checkpoint at fault @param fault what is wrong */
  constructor(readonly path: string, readonly fault: string) {
    super(`checkpoint ${path}: ${fault}`);
    this.name = "CheckpointError";
  }
}

/**
 * Moves the finished directory `tmp` to `dir`, replacing any directory there:
 * a reader sees the old one or the new one, never a mix.
 */
export async function renameIntoPlace(tmp: string, dir: string): Promise<void> {
  if (await pathExists(dir)) {
    const old = `${dir}.old-${crypto.randomUUID()}`;
    await Deno.rename(dir, old);
    await Deno.rename(tmp, dir);
    await Deno.remove(old, { recursive: true });
  } else {
    await Deno.rename(tmp, dir);
  }
}

/** Writes files into `dir` atomically: all of them appear, or none. */
export async function writeDirAtomic(dir: string, files: Record<string, Uint8Array | string>): Promise<void> {
  const parent = dir.replace(/\/+$/, "").replace(/\/[^/]*$/, "") || ".";
  await Deno.mkdir(parent, { recursive: true });
  const tmp = `${dir.replace(/\/+$/, "")}.tmp-${crypto.randomUUID()}`;
  await Deno.mkdir(tmp);
  try {
    for (const [name, data] of Object.entries(files)) {
      if (typeof data === "string") await Deno.writeTextFile(`${tmp}/${name}`, data);
      else await Deno.writeFile(`${tmp}/${name}`, data);
    }
    await renameIntoPlace(tmp, dir);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * A tfjs IOHandler that saves to / loads from the directory `dir`
 * (model.json + weights.bin).
 *
 * @example
 * ```ts ignore
 * await model.save(fileHandler("ckpt/victim"));
 * const again = await tf.loadLayersModel(fileHandler("ckpt/victim"));
 * ```
 */
export function fileHandler(dir: string): tf.io.IOHandler {
  return {
    save: async (art: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> => {
      const weights = art.weightData === undefined
        ? new Uint8Array(0)
        : new Uint8Array(tf.io.CompositeArrayBuffer.join(art.weightData));
      const modelJson = {
        modelTopology: art.modelTopology,
        format: art.format,
        generatedBy: art.generatedBy,
        convertedBy: art.convertedBy,
        trainingConfig: art.trainingConfig,
        weightsManifest: [{ paths: ["weights.bin"], weights: art.weightSpecs ?? [] }],
      };
      await writeDirAtomic(dir, { "model.json": JSON.stringify(modelJson), "weights.bin": weights });
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(art) };
    },
    load: async (): Promise<tf.io.ModelArtifacts> => {
      let json: {
        modelTopology: object;
        weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[];
        format?: string;
        trainingConfig?: tf.io.TrainingConfig;
      };
      try {
        json = JSON.parse(await Deno.readTextFile(`${dir}/model.json`));
      } catch (e) {
        throw new CheckpointError(`${dir}/model.json`, e instanceof Deno.errors.NotFound ? "missing" : `${e}`);
      }
      let data: Uint8Array;
      try {
        data = await Deno.readFile(`${dir}/weights.bin`);
      } catch {
        throw new CheckpointError(`${dir}/weights.bin`, "missing");
      }
      const specs = json.weightsManifest.flatMap((g) => g.weights);
      const expected = specs.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1) * 4, 0);
      if (data.byteLength !== expected) {
        throw new CheckpointError(`${dir}/weights.bin`, `expected ${expected} bytes, found ${data.byteLength}`);
      }
      return {
        modelTopology: json.modelTopology,
        weightSpecs: specs,
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer,
        format: json.format,
        trainingConfig: json.trainingConfig,
      };
    },
  };
}

/** Saves a layers model to `dir`. */
export async function saveModel(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(fileHandler(dir));
}

/** Loads a layers model saved by {@linkcode saveModel}. */
export async function loadModel(dir: string): Promise<tf.LayersModel> {
  return await tf.loadLayersModel(fileHandler(dir));
}

/**
 * Saves named float32/int32 tensors plus JSON metadata to the directory `dir`
 * (tensors.json + tensors.bin), atomically.
 */
export async function saveTensors(
  dir: string,
  tensors: Record<string, tf.Tensor>,
  meta: unknown = {},
): Promise<void> {
  const entries: { name: string; shape: number[]; dtype: string; offset: number; bytes: number }[] = [];
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (t.dtype !== "float32" && t.dtype !== "int32") {
      throw new CheckpointError(dir, `tensor ${name} has dtype ${t.dtype}; only float32 and int32 are stored`);
    }
    const v = t.dataSync() as Float32Array | Int32Array;
    const bytes = new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
    entries.push({ name, shape: t.shape, dtype: t.dtype, offset, bytes: bytes.byteLength });
    parts.push(bytes);
    offset += bytes.byteLength;
  }
  const bin = new Uint8Array(offset);
  let o = 0;
  for (const p of parts) {
    bin.set(p, o);
    o += p.byteLength;
  }
  await writeDirAtomic(dir, { "tensors.json": JSON.stringify({ entries, meta }), "tensors.bin": bin });
}

/** Loads what {@linkcode saveTensors} wrote; the caller owns the tensors. */
export async function loadTensors<M = unknown>(
  dir: string,
): Promise<{ tensors: Record<string, tf.Tensor>; meta: M }> {
  let head: {
    entries: { name: string; shape: number[]; dtype: "float32" | "int32"; offset: number; bytes: number }[];
    meta: M;
  };
  let bin: Uint8Array;
  try {
    head = JSON.parse(await Deno.readTextFile(`${dir}/tensors.json`));
    bin = await Deno.readFile(`${dir}/tensors.bin`);
  } catch (e) {
    throw new CheckpointError(dir, e instanceof Deno.errors.NotFound ? "missing" : `unreadable: ${e}`);
  }
  const tensors: Record<string, tf.Tensor> = {};
  for (const e of head.entries) {
    if (e.offset + e.bytes > bin.byteLength) {
      tf.dispose(Object.values(tensors));
      throw new CheckpointError(dir, `tensors.bin truncated at ${e.name}`);
    }
    const buf = bin.buffer.slice(bin.byteOffset + e.offset, bin.byteOffset + e.offset + e.bytes);
    const arr = e.dtype === "int32" ? new Int32Array(buf) : new Float32Array(buf);
    tensors[e.name] = tf.tensor(arr, e.shape, e.dtype);
  }
  return { tensors, meta: head.meta };
}
