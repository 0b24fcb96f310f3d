/**
 * Memory soak: runs a training loop for many steps and samples, every
 * `--every` steps, tfjs's tensor count and bytes, the wasm heap size and the
 * process's resident memory. A leak of one tensor per step shows as a growing
 * count; a leak outside tfjs (plans, scratch, JS arrays) as growing RSS.
 *
 * Usage:
 * `deno run -A lib/bench/soak.ts [--model resnet18_8x|lenet5] [--steps 10000] [--batch 32] [--every 500] [--out DIR]`
 *
 * With `--out` it writes DIR/summary.json (samples, verdict, and the run's provenance: commit, command, date,
 * backend, oneDNN version and ISA, Deno and tfjs versions, CPU and load).
 * The model trains on a fixed random batch with PyTorch's Adam (ResNet, with
 * BatchNorm) or SGD with momentum and weight decay (LeNet-5), as the project's
 * training loops do.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend, nativeReport } from "../backend/mod.ts";
import { parseCli } from "../cli/args.ts";
import { lenet5 } from "../models/lenet.ts";
import { resnet8x } from "../models/resnet_8x.ts";
import { makeOptimizer } from "../train/optim.ts";
import { CROSS_ENTROPY } from "../train/losses.ts";
import { makeTrainer } from "../train/trainer.ts";
import { processProvenance, stamp } from "../experiments/provenance.ts";
import { writeDirAtomic } from "../train/checkpoint.ts";

/** One sample of the soak. */
export interface SoakSample {
  step: number;
  numTensors: number;
  numBytes: number;
  /** Resident set size of the process, MiB. */
  rssMiB: number;
  /** V8's JavaScript heap (heapTotal), MiB: garbage not yet collected swings it, and RSS with it. */
  jsHeapMiB: number;
  /** Milliseconds per step over the last interval. */
  msPerStep: number;
}

/** Options of {@linkcode soak}. */
export interface SoakOptions {
  model: "resnet18_8x" | "lenet5";
  steps: number;
  batch: number;
  every: number;
  /** Called with each sample as it is taken. */
  onSample?: (s: SoakSample) => void;
}

/** Runs the loop and returns the samples (the first is taken after one warm-up step). */
export function soak(opts: SoakOptions): SoakSample[] {
  const resnet = opts.model === "resnet18_8x";
  const model = resnet ? resnet8x({ depth: 18, seed: 0, width: 16 / 64 }) : lenet5({ seed: 0 });
  const shape: [number, number, number, number] = resnet ? [opts.batch, 32, 32, 3] : [opts.batch, 28, 28, 1];
  const x = tf.randomNormal(shape, 0, 1, "float32", 1);
  const y = tf.tidy(() =>
    tf.cast(tf.floor(tf.randomUniform([opts.batch], 0, 10, "float32", 2)), "int32") as tf.Tensor1D
  );
  const { optimizer } = resnet
    ? makeOptimizer({ optimizer: "adam", lr: 1e-3 })
    : makeOptimizer({ optimizer: "sgd", lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const trainer = makeTrainer(model, optimizer, CROSS_ENTROPY);
  const samples: SoakSample[] = [];
  let t0 = performance.now(), last = 0;
  const sample = (s: number) => {
    const now = performance.now();
    const m = tf.memory();
    const mem = Deno.memoryUsage();
    const out: SoakSample = {
      step: s,
      numTensors: m.numTensors,
      numBytes: m.numBytes,
      rssMiB: Math.round(mem.rss / 2 ** 20),
      jsHeapMiB: Math.round(mem.heapTotal / 2 ** 20),
      msPerStep: s > last ? (now - t0) / (s - last) : 0,
    };
    samples.push(out);
    opts.onSample?.(out);
    t0 = now;
    last = s;
  };
  try {
    for (let s = 1; s <= opts.steps; s++) {
      trainer.step(x, y).dispose();
      if (s === 1) {
        last = 1;
        sample(1);
      } else if (s % opts.every === 0 || s === opts.steps) sample(s);
    }
  } finally {
    trainer.dispose();
    model.dispose();
    optimizer.dispose();
    tf.dispose([x, y]);
  }
  return samples;
}

/**
 * Tensor count flat from the first sample on, and RSS growth (MiB): the lowest RSS of the last quarter of the samples
 * minus the lowest of the second quarter. RSS swings by tens of MiB with V8's garbage collection (a sawtooth as
 * garbage accumulates and is collected), and V8 grows its heap over the first thousand steps; a leak raises the
 * floor the swings return to, which is what is compared.
 */
export function verdict(samples: SoakSample[]): { tensorsFlat: boolean; rssGrowthMiB: number } {
  const first = samples[0];
  const n = samples.length;
  const floor = (from: number, to: number) => {
    const part = samples.slice(Math.min(from, n - 1), Math.max(to, from + 1));
    return Math.min(...part.map((s) => s.rssMiB));
  };
  const q = Math.floor(n / 4);
  return {
    tensorsFlat: samples.every((s) => s.numTensors === first.numTensors && s.numBytes === first.numBytes),
    rssGrowthMiB: floor(n - Math.max(q, 1), n) - floor(Math.max(q, 1), Math.max(2 * q, 2)),
  };
}

const CLI = {
  usage: "deno run -A lib/bench/soak.ts [--model resnet18_8x|lenet5] [--steps N] [--batch N] [--every N] [--out DIR]",
  description: "Trains for many steps and samples tfjs's tensor count and bytes and the process's RSS.",
  options: {
    model: { type: "choice", choices: ["resnet18_8x", "lenet5"], default: "resnet18_8x", help: "the model trained" },
    steps: { type: "integer", min: 1, default: 10000, help: "training steps" },
    batch: { type: "integer", min: 1, default: 32, help: "images per step" },
    every: { type: "integer", min: 1, default: 500, help: "steps between samples" },
    out: { type: "string", nonEmpty: true, value: "DIR", help: "write DIR/summary.json" },
  },
} as const;

if (import.meta.main) {
  const { values: a } = parseCli(CLI);
  const backend = await initBackend();
  console.error(`backend: ${backend.reason}`);
  const provenance = await processProvenance(backend.name, nativeReport());
  const opts = { model: a.model, steps: a.steps, batch: a.batch, every: a.every };
  const t = performance.now();
  const samples = soak({ ...opts, onSample: (s) => console.log(JSON.stringify(s)) });
  const v = verdict(samples);
  console.log(JSON.stringify(v));
  const out = a.out;
  if (out !== undefined) {
    const summary = {
      meta: {
        ...stamp(provenance),
        minutes: (performance.now() - t) / 60000,
        ...opts,
      },
      verdict: v,
      samples,
    };
    await writeDirAtomic(out, { "summary.json": JSON.stringify(summary, null, 2) + "\n" });
  }
}
