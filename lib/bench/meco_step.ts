/**
 * One MeCo training step (Algorithm 1, {@linkcode mecoTrainStep}) of a large
 * target at a given width and batch: per step its time, the wasm heap's size
 * (it only grows, so after a step it is the peak so far), the process's RSS
 * and tfjs's tensor count, with the step's memory plan (whether it recomputes,
 * in how many pieces, in how many parts the SVGD step takes its gradients).
 * The paper's CIFAR setting: ResNet-34-8x at width 1, h of width 64, batch 128.
 *
 * ```sh
 * deno run -A lib/bench/meco_step.ts --arch resnet34_8x --width 1 --batch 128 --steps 3
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend, nativeReport } from "../backend/mod.ts";
import { parseCli } from "../cli/args.ts";
import { processProvenance, stamp } from "../experiments/provenance.ts";
import { mecoMemoryPlan, mecoOptimizer, mecoTrainStep, TAPE_BUDGET } from "../meco/train.ts";
import { perturbationNet } from "../models/perturbation.ts";
import { buildClassifier, CLASSIFIERS } from "../models/registry.ts";

/** What {@linkcode mecoStepMemory} measures after each step. */
export interface MecoStepSample {
  /** Step number, from 1 (the first includes building plans and Adam's moments). */
  step: number;
  /** Wall time of the step (ms). */
  ms: number;
  /** The wasm heap's size after it (MiB; null on a backend without one). */
  heapMiB: number | null;
  /** The process's resident memory after it (MiB). */
  rssMiB: number;
  /** tfjs's live tensors after it. */
  numTensors: number;
}

/** Options of {@linkcode mecoStepMemory}. */
export interface MecoStepOptions {
  /** A classifier of lib/models/registry.ts. */
  arch: string;
  /** Its width multiplier. */
  width: number;
  /** Images per step. */
  batch: number;
  /** Filters of h. */
  hWidth: number;
  /** Steps to time. */
  steps: number;
  /** The step's tape budget in bytes (see {@linkcode mecoMemoryPlan}). */
  tapeBudget?: number;
  /** Called after each step. */
  onSample?: (s: MecoStepSample) => void;
}

/** The wasm heap's size in MiB, or null when the backend has none. */
function heapMiB(): number | null {
  const wasm = (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm;
  return wasm === undefined ? null : Math.round(wasm.HEAPU8.buffer.byteLength / 2 ** 20);
}

/** Runs `steps` MeCo steps on random CIFAR-shaped data (MNIST-shaped for LeNet-5) and samples memory after each. */
export function mecoStepMemory(opts: MecoStepOptions): {
  plan: { recompute: boolean; pieces: number; svgdChunks: number };
  samples: MecoStepSample[];
} {
  const shape: [number, number, number] = opts.arch === "lenet5" ? [28, 28, 1] : [32, 32, 3];
  const target = buildClassifier(opts.arch, { seed: 0, inputShape: shape, classes: 10, width: opts.width });
  const perturb = perturbationNet({ imageShape: shape, width: opts.hWidth, bound: 1, seed: 1 });
  const optimizer = mecoOptimizer(1e-3); // as trainMeco
  const x = tf.randomUniform([opts.batch, ...shape], -1, 1, "float32", 1) as tf.Tensor4D;
  const y = tf.tidy(() =>
    tf.cast(tf.floor(tf.randomUniform([opts.batch], 0, 10, "float32", 2)), "int32") as tf.Tensor1D
  );
  const p = mecoMemoryPlan(target, opts.batch, opts.tapeBudget);
  const samples: MecoStepSample[] = [];
  try {
    for (let step = 1; step <= opts.steps; step++) {
      const t0 = performance.now();
      tf.tidy(() => {
        const eps = tf.randomNormal(x.shape, 0, 1, "float32", 2 + step) as tf.Tensor4D;
        mecoTrainStep(target, perturb, optimizer, x, y, eps, {
          q: 1,
          alpha: 0.1,
          sigma: "median",
          gamma: 1,
          tapeBudget: opts.tapeBudget,
        });
      });
      const s = {
        step,
        ms: Math.round(performance.now() - t0),
        heapMiB: heapMiB(),
        rssMiB: Math.round(Deno.memoryUsage().rss / 2 ** 20),
        numTensors: tf.memory().numTensors,
      };
      samples.push(s);
      opts.onSample?.(s);
    }
  } finally {
    target.dispose();
    perturb.dispose();
    optimizer.dispose();
    tf.dispose([x, y]);
  }
  return { plan: { recompute: p.recompute, pieces: p.pieces.length, svgdChunks: p.svgdChunks }, samples };
}

const CLI = {
  usage: "deno run -A lib/bench/meco_step.ts [--arch A] [--width W] [--batch N] [--h-width N] [--steps N]",
  description: "Times MeCo training steps of a large target and samples the wasm heap, RSS and tensor count.",
  options: {
    arch: { type: "string", nonEmpty: true, default: "resnet34_8x", value: "ARCH", help: "target architecture" },
    width: { type: "number", min: 0.01, max: 4, default: 1, help: "the target's width multiplier" },
    batch: { type: "integer", min: 1, default: 128, help: "images per step" },
    "h-width": { type: "integer", min: 1, default: 64, help: "filters of h" },
    steps: { type: "integer", min: 1, default: 3, help: "steps to time" },
    "tape-budget-mib": {
      type: "number",
      min: 0.001,
      default: TAPE_BUDGET / 2 ** 20,
      value: "MIB",
      help: "layer outputs of one target pass above which the step recomputes",
    },
  },
} as const;

if (import.meta.main) {
  const { values: a } = parseCli(CLI);
  if (!(a.arch in CLASSIFIERS)) {
    console.error(`--arch: '${a.arch}' is not an architecture; available: ${Object.keys(CLASSIFIERS).join(", ")}`);
    Deno.exit(2);
  }
  const backend = await initBackend();
  console.error(`backend: ${backend.reason}`);
  const provenance = await processProvenance(backend.name, nativeReport());
  const opts = {
    arch: a.arch,
    width: a.width,
    batch: a.batch,
    hWidth: a["h-width"],
    steps: a.steps,
    tapeBudget: a["tape-budget-mib"] * 2 ** 20,
  };
  const r = mecoStepMemory({ ...opts, onSample: (s) => console.log(JSON.stringify(s)) });
  console.log(JSON.stringify({ ...opts, plan: r.plan, ...stamp(provenance) }));
}
