import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import {
  CROSS_ENTROPY,
  KL_DIVERGENCE,
  L1_LOSS,
  meanAbsoluteError,
  SOFT_CROSS_ENTROPY,
  type TrainingLoss,
} from "../../lib/train/losses.ts";
import { makeOptimizer } from "../../lib/train/optim.ts";
import { makeTrainer } from "../../lib/train/trainer.ts";
import { nativeTest } from "../_parts.ts";

await initBackend("wasm");

const N = 6, K = 10;

/** A batch of images and, for each loss, its targets. */
function batch(seed: number) {
  return tf.tidy(() => {
    const x = tf.randomUniform([N, 28, 28, 1], -1, 1, "float32", seed);
    const labels = tf.tensor1d([0, 3, 9, 1, 3, 7], "int32");
    const probs = tf.softmax(tf.randomNormal([N, K], 0, 2, "float32", seed + 1)) as tf.Tensor2D;
    const logits = tf.randomNormal([N, K], 0, 3, "float32", seed + 2) as tf.Tensor2D;
    return { x, labels, probs, logits };
  });
}

type Case = { loss: TrainingLoss<tf.Tensor>; target: (b: ReturnType<typeof batch>) => tf.Tensor };
const CASES: Case[] = [
  { loss: CROSS_ENTROPY as TrainingLoss<tf.Tensor>, target: (b) => b.labels },
  { loss: SOFT_CROSS_ENTROPY as TrainingLoss<tf.Tensor>, target: (b) => b.probs },
  { loss: L1_LOSS as TrainingLoss<tf.Tensor>, target: (b) => b.logits },
  { loss: KL_DIVERGENCE as TrainingLoss<tf.Tensor>, target: (b) => b.probs },
];

/** Three SGD steps of a fresh LeNet-5 with `loss`; the losses, the weights and the compiled step count. */
function train(c: Case) {
  const model = lenet5({ seed: 4 });
  const { optimizer } = makeOptimizer({ optimizer: "sgd", lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
  const trainer = makeTrainer(model, optimizer, c.loss);
  const losses: number[] = [];
  for (let s = 0; s < 3; s++) {
    const b = batch(10 * s);
    const l = trainer.step(b.x, c.target(b));
    losses.push(l.dataSync()[0]);
    tf.dispose([l, b.x, b.labels, b.probs, b.logits]);
  }
  const weights = model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
  const compiledRuns = trainer.compiledRuns;
  trainer.dispose();
  optimizer.dispose();
  model.dispose();
  return { losses, weights, compiledRuns };
}

nativeTest("every training loss: the compiled step equals the engine path (loss values, weights)", () => {
  for (const c of CASES) {
    const runs = ["1", "0"].map((flag) => {
      Deno.env.set("MECO_COMPILED_STEP", flag);
      try {
        return train(c);
      } finally {
        Deno.env.delete("MECO_COMPILED_STEP");
      }
    });
    assert.equal(runs[0].compiledRuns, 3, `${c.loss.name}: the compiled path ran`);
    assert.equal(runs[1].compiledRuns, 0, `${c.loss.name}: MECO_COMPILED_STEP=0 keeps the engine path`);
    runs[0].losses.forEach((l, i) => {
      const ref = runs[1].losses[i];
      assert.ok(Math.abs(l - ref) < 1e-4 * Math.abs(ref), `${c.loss.name} loss ${i}: ${l} vs ${ref}`);
    });
    runs[0].weights.forEach((w, i) => {
      let worst = 0, scale = 0;
      w.forEach((v, j) => {
        worst = Math.max(worst, Math.abs(v - runs[1].weights[i][j]));
        scale = Math.max(scale, Math.abs(runs[1].weights[i][j]));
      });
      assert.ok(worst <= 1e-3 * scale, `${c.loss.name} weight ${i}: differs by ${worst} (scale ${scale})`);
    });
  }
});

Deno.test("a loss without a compiled form always takes the engine path; steps keep no tensors", () => {
  const engineOnly: TrainingLoss<tf.Tensor2D> = { name: "L1 (engine only)", engine: meanAbsoluteError };
  const model = lenet5({ seed: 4 });
  const { optimizer } = makeOptimizer({ optimizer: "sgd", lr: 0.05, momentum: 0.9 });
  const trainer = makeTrainer(model, optimizer, engineOnly);
  const b = batch(0);
  trainer.step(b.x, b.logits).dispose(); // the optimizer's momenta are made on the first step
  const before = tf.memory().numTensors;
  const l = trainer.step(b.x, b.logits);
  assert.ok(Number.isFinite(l.dataSync()[0]));
  l.dispose();
  assert.equal(tf.memory().numTensors, before, "a step leaked tensors");
  assert.equal(trainer.compiledRuns, 0);
  trainer.dispose();
  tf.dispose([b.x, b.labels, b.probs, b.logits]);
  optimizer.dispose();
  model.dispose();
});

Deno.test("KL_DIVERGENCE's compiled form has the engine's value and the soft cross-entropy's gradient", () => {
  const b = batch(3);
  const z = b.logits.dataSync() as Float32Array;
  const klGrad = new Float32Array(N * K), softGrad = new Float32Array(N * K);
  const kl = KL_DIVERGENCE.compiled!(b.probs, N)!(z, klGrad, N, K);
  SOFT_CROSS_ENTROPY.compiled!(b.probs, N)!(z, softGrad, N, K);
  const ref = tf.tidy(() => KL_DIVERGENCE.engine(b.logits, b.probs).dataSync()[0]);
  assert.ok(Math.abs(kl - ref) < 1e-5 * Math.abs(ref), `KL ${kl} vs ${ref}`);
  assert.deepEqual(klGrad, softGrad);
  // Hard labels of another batch size are left to the engine path.
  assert.equal(CROSS_ENTROPY.compiled!(b.labels, N + 1), undefined);
  tf.dispose([b.x, b.labels, b.probs, b.logits]);
});
