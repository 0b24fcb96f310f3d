/**
 * The benchmark workloads, each defined shape for shape as in the PyTorch peer
 * benchmark the project is compared with (run with `--threads 2`), so the
 * two can be compared as a ratio.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { lenet5 } from "../models/lenet.ts";
import { resnet8x } from "../models/resnet_8x.ts";
import { CROSS_ENTROPY } from "../train/losses.ts";
import { makeTrainer } from "../train/trainer.ts";
import { makeOptimizer } from "../train/optim.ts";
import { createDfmeState, dfmeIteration, dfmeSettings, disposeDfmeState } from "../attacks/dfme.ts";
import { BlackBox } from "../victim/black_box.ts";
import { undefended } from "../defenses/undefended.ts";
import { mecoOptimizer, mecoTrainStep } from "../meco/train.ts";
import { perturbationNet } from "../models/perturbation.ts";

/** Waits for `t` by reading back its first element (a one-element slice, not a copy of the whole tensor). */
function syncOne(t: tf.Tensor): void {
  tf.tidy(() => t.reshape([-1]).slice(0, 1).dataSync());
}

/** A workload: `setup` builds it and returns the function to time. */
export interface Workload {
  /** Name, identical to the peer's. */
  name: string;
  /** Warm-up and timed repetitions (the peer's counts). */
  reps: [warmup: number, timed: number];
  /** Builds the workload; the returned `run` is timed, `dispose` frees it. */
  setup: () => { run: () => void; dispose: () => void };
}

function labels(n: number, k: number, seed: number): tf.Tensor1D {
  return tf.cast(tf.randomUniform([n], 0, k, "float32", seed).floor(), "int32") as tf.Tensor1D;
}

function trainStepWorkload(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor1D) {
  const { optimizer } = makeOptimizer({ optimizer: "adam", lr: 1e-3 }); // PyTorch's Adam, as the peer
  const trainer = makeTrainer(model, optimizer, CROSS_ENTROPY);
  return {
    run: () => {
      const loss = trainer.step(x, y);
      loss.dataSync();
      loss.dispose();
    },
    dispose: () => {
      trainer.dispose();
      model.dispose();
      optimizer.dispose();
      tf.dispose([x, y]);
    },
  };
}

/** Every workload the bench reports. */
export const WORKLOADS: Workload[] = [
  {
    name: "lenet_train_step_b128",
    reps: [3, 15],
    setup: () =>
      trainStepWorkload(lenet5({ seed: 0 }), tf.randomNormal([128, 28, 28, 1], 0, 1, "float32", 1), labels(128, 10, 2)),
  },
  {
    name: "lenet_forward_b128",
    reps: [3, 15],
    setup: () => {
      const model = lenet5({ seed: 0 });
      const x = tf.randomNormal([128, 28, 28, 1], 0, 1, "float32", 1);
      return {
        run: () => {
          const y = model.apply(x, { training: false }) as tf.Tensor;
          y.dataSync();
          y.dispose();
        },
        dispose: () => {
          model.dispose();
          x.dispose();
        },
      };
    },
  },
  {
    name: "conv3x3_c64_s32_b32_fwd_bwd",
    reps: [3, 15],
    setup: () => {
      const x = tf.randomNormal([32, 32, 32, 64], 0, 1, "float32", 1) as tf.Tensor4D;
      const w = tf.randomNormal([3, 3, 64, 64], 0, 1, "float32", 2) as tf.Tensor4D;
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same").square().mean()
      );
      return {
        run: () => {
          const [dx, dw] = g([x, w]);
          // Reading one element of each gradient waits for it on any backend, as PyTorch's backward() returns with
          // the gradients computed. (dataSync() of the whole 8 MB dx also copied it into a fresh JS array: the first
          // touches of new pages made that copy take 1–28 ms, more than the convolutions on some steps.)
          syncOne(dx);
          syncOne(dw);
          tf.dispose([dx, dw]);
        },
        dispose: () => tf.dispose([x, w]),
      };
    },
  },
  {
    name: "resnet18_8x_w16_train_step_b32",
    reps: [3, 15],
    setup: () =>
      trainStepWorkload(
        resnet8x({ depth: 18, seed: 0, width: 16 / 64 }),
        tf.randomNormal([32, 32, 32, 3], 0, 1, "float32", 1),
        labels(32, 10, 2),
      ),
  },
  {
    // The PyTorch peer benchmark's dfme_iteration(): batch 256, m 1, d_iter 5, nz 256, ngf 16, LeNet-5 victim and
    // clone; one real dfmeIteration (generator step + 5 clone steps, 1792 queries) through an undefended BlackBox.
    name: "dfme_mnist_iteration_g16",
    reps: [1, 3],
    setup: () => {
      const victim = lenet5({ seed: 0 });
      const blackBox = new BlackBox(undefended(victim), {
        imageShape: [28, 28, 1],
        numClasses: 10,
        budget: Number.MAX_SAFE_INTEGER,
      });
      const settings = dfmeSettings({ batch_size: 256, m: 1, d_iter: 5, nz: 256, gen_width: 16, clone_arch: "lenet5" });
      const state = createDfmeState({ blackBox, budget: 2_000_000, seed: 0, settings });
      return {
        run: () => void dfmeIteration(state),
        dispose: () => {
          disposeDfmeState(state);
          victim.dispose();
        },
      };
    },
  },
  {
    // The PyTorch peer benchmark's meco_step(): one step of Algorithm 1 (Q = 1) on MNIST-shaped data, LeNet-5 target,
    // h of width 16, batch 128, γ = 1: the SVGD step of the batch through T(x + h(x, ε)), then one Adam step on T and
    // h (lib/meco/train.ts, the step trainMeco takes); x uniform in [−1, 1], fresh ε per step.
    name: "meco_lenet_step_b128_h16",
    reps: [3, 15],
    setup: () => {
      const target = lenet5({ seed: 0 });
      const perturb = perturbationNet({ imageShape: [28, 28, 1], width: 16, bound: 1, seed: 1 });
      const optimizer = mecoOptimizer(1e-3); // as trainMeco
      const x = tf.randomUniform([128, 28, 28, 1], -1, 1, "float32", 1) as tf.Tensor4D;
      const y = labels(128, 10, 2);
      let step = 0;
      return {
        run: () =>
          tf.tidy(() => {
            const eps = tf.randomNormal(x.shape, 0, 1, "float32", 3 + step++) as tf.Tensor4D;
            mecoTrainStep(target, perturb, optimizer, x, y, eps, { q: 1, alpha: 0.1, sigma: "median", gamma: 1 });
          }),
        dispose: () => {
          target.dispose();
          perturb.dispose();
          optimizer.dispose();
          tf.dispose([x, y]);
        },
      };
    },
  },
];

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Times one workload: warm-up runs, then the median of the timed runs in ms. */
export function timeWorkload(w: Workload): number {
  const { run, dispose } = w.setup();
  try {
    for (let i = 0; i < w.reps[0]; i++) run();
    const xs: number[] = [];
    for (let i = 0; i < w.reps[1]; i++) {
      const t = performance.now();
      run();
      xs.push(performance.now() - t);
    }
    return median(xs);
  } finally {
    dispose();
  }
}
