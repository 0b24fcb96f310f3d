import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { type Dataset, loadDataset, subset, toSignedRange } from "../../lib/data/mod.ts";
import { mecoDefense } from "../../lib/defenses/meco.ts";
import { mecoMemoryPlan, mecoOptimizer, mecoTrainStep, trainMeco, worstCaseBatch } from "../../lib/meco/train.ts";
import { crossEntropy } from "../../lib/train/losses.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import { perturbationNet } from "../../lib/models/perturbation.ts";
import { resnet8x } from "../../lib/models/resnet_8x.ts";

await initBackend("wasm");
const data: Dataset = toSignedRange(subset(await loadDataset("mnist", "train"), 256, { seed: 1 }));

function batch(n: number): { x: tf.Tensor4D; y: tf.Tensor1D } {
  return {
    x: tf.tensor4d(data.images.subarray(0, n * 784), [n, 28, 28, 1]),
    y: tf.tensor1d(data.labels.subarray(0, n), "int32"),
  };
}

Deno.test("h's output is bounded by `bound` in L∞ and depends on ε", () => {
  const h = perturbationNet({ imageShape: [28, 28, 1], width: 4, bound: 0.25, seed: 0 });
  const { x, y } = batch(16);
  const d1 = h.apply([x, tf.randomNormal(x.shape, 0, 1, "float32", 1)], { training: false }) as tf.Tensor;
  const d2 = h.apply([x, tf.randomNormal(x.shape, 0, 1, "float32", 2)], { training: false }) as tf.Tensor;
  assert.deepEqual(d1.shape, x.shape);
  assert.ok(tf.max(tf.abs(d1)).dataSync()[0] <= 0.25 + 1e-6);
  assert.ok(tf.max(tf.abs(tf.sub(d1, d2))).dataSync()[0] > 1e-3, "h ignores ε");
  tf.dispose([x, y, d1, d2]);
  h.dispose();
});

Deno.test("the worst-case batch raises the loss; Q = 0 leaves the batch unchanged", () => {
  const T = lenet5({ seed: 0 });
  const h = perturbationNet({ imageShape: [28, 28, 1], width: 4, bound: 0.1, seed: 0 });
  const { x, y } = batch(32);
  const eps = tf.randomNormal(x.shape, 0, 1, "float32", 3) as tf.Tensor4D;
  const loss = (v: tf.Tensor4D) =>
    tf.tidy(() =>
      crossEntropy(T.apply(tf.add(v, h.apply([v, eps]) as tf.Tensor), { training: false }) as tf.Tensor2D, y)
        .dataSync()[0]
    );
  const x0 = worstCaseBatch(T, h, x, y, eps, { q: 0, alpha: 0.05, sigma: "median" });
  assert.deepEqual(Array.from(x0.dataSync()), Array.from(x.dataSync()));
  const x3 = worstCaseBatch(T, h, x, y, eps, { q: 3, alpha: 0.05, sigma: "median" });
  assert.ok(loss(x3) > loss(x), `loss ${loss(x3)} not above ${loss(x)}`);
  assert.ok(tf.max(tf.abs(x3)).dataSync()[0] <= 1, "particles left [-1, 1]");
  tf.dispose([x, y, eps, x0, x3]);
  T.dispose();
  h.dispose();
});

Deno.test("one DRO step moves the batch by a measurable RMS, up the inner objective", () => {
  const T = lenet5({ seed: 0 });
  const h = perturbationNet({ imageShape: [28, 28, 1], width: 4, bound: 0.5, seed: 0 });
  const { x, y } = batch(64);
  const eps = tf.randomNormal(x.shape, 0, 1, "float32", 4) as tf.Tensor4D;
  const objective = (v: tf.Tensor) =>
    crossEntropy(T.apply(tf.add(v, h.apply([v, eps]) as tf.Tensor), { training: false }) as tf.Tensor2D, y);
  const x1 = worstCaseBatch(T, h, x, y, eps, { q: 1, alpha: 0.1, sigma: "median" });
  const d = tf.sub(x1, x);
  const moved = Math.sqrt(tf.mean(tf.square(d)).dataSync()[0]);
  // α = 0.1 per pixel before clipping; MNIST's background sits at −1, so clipping takes some of it back.
  assert.ok(moved > 0.02 && moved <= 0.1 + 1e-6, `moved by RMS ${moved}`);
  const g = tf.grad(objective)(x);
  assert.ok(tf.sum(tf.mul(d, g)).dataSync()[0] > 0, "the step does not go up the objective");
  assert.ok(objective(x1).dataSync()[0] > objective(x).dataSync()[0]);
  tf.dispose([x, y, eps, x1, d, g]);
  T.dispose();
  h.dispose();
});

/** Algorithm 1's update on one tape: the form mecoTrainStep's three tapes must equal. */
function singleTapeStep(
  T: tf.LayersModel,
  h: tf.LayersModel,
  opt: tf.Optimizer,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  eps: tf.Tensor4D,
  gamma: number,
): void {
  tf.tidy(() => {
    const xq = worstCaseBatch(T, h, x, y, eps, { q: 1, alpha: 0.1, sigma: "median" });
    const vars = [...T.trainableWeights, ...h.trainableWeights].map((v) => v.read() as tf.Variable);
    opt.minimize(
      () => {
        const dq = h.apply([xq, eps], { training: true }) as tf.Tensor4D;
        const ce = crossEntropy(T.apply(tf.add(xq, dq), { training: true }) as tf.Tensor2D, y);
        const dx = h.apply([x, eps], { training: true }) as tf.Tensor4D;
        const pPert = tf.softmax(T.apply(tf.add(x, dx), { training: true }) as tf.Tensor2D);
        const pClean = tf.softmax(T.apply(x, { training: true }) as tf.Tensor2D);
        return tf.add(ce, tf.mul(tf.mean(tf.sum(tf.abs(tf.sub(pPert, pClean)), 1)), gamma)) as tf.Scalar;
      },
      false,
      vars,
    );
  });
}

type Step = (T: tf.LayersModel, h: tf.LayersModel, opt: tf.Optimizer, eps: tf.Tensor4D) => void;

/**
 * Two SGD steps of `first` and of `second` on the same ResNet (with BatchNorm: its moving statistics must see the same
 * passes) and h, each step from the same weights and moving statistics (the second's copied from the first's before
 * it): every weight, moving statistics included, equal within `tolerance` of its change in that step. SGD's update is
 * linear in the gradient, so a missing or doubled part shows. The copy keeps the comparison at rounding: left to run
 * on, the two would part within a step or two wherever rounding flips a ReLU's mask, as any two summation orders do.
 */
function sameUpdates(first: Step, second: Step, tolerance: number): void {
  const target = () => resnet8x({ depth: 18, seed: 0, width: 1 / 16, inputShape: [28, 28, 1], classes: 10 });
  const perturb = () => perturbationNet({ imageShape: [28, 28, 1], width: 4, bound: 0.5, seed: 0 });
  const [T1, h1, T2, h2] = [target(), perturb(), target(), perturb()];
  const opt1 = tf.train.sgd(0.5), opt2 = tf.train.sgd(0.5);
  const moved = new Set<string>();
  for (let step = 0; step < 2; step++) {
    T2.setWeights(T1.getWeights());
    h2.setWeights(h1.getWeights());
    const before = [...T1.weights, ...h1.weights].map((w) => tf.clone(w.read()));
    const eps = tf.randomNormal([32, 28, 28, 1], 0, 1, "float32", 10 + step) as tf.Tensor4D;
    first(T1, h1, opt1, eps);
    second(T2, h2, opt2, eps);
    eps.dispose();
    const pairs = [...T1.weights.map((w, i) => [w, T2.weights[i]]), ...h1.weights.map((w, i) => [w, h2.weights[i]])];
    pairs.forEach(([w1, w2], i) => {
      const [a, b] = [w1.read(), w2.read()];
      const diff = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
      const change = tf.max(tf.abs(tf.sub(b, before[i]))).dataSync()[0];
      if (change > 1e-3) moved.add(w1.name);
      assert.ok(
        diff <= tolerance * Math.max(change, 1e-2),
        `step ${step}: ${w1.name} differs by ${diff} (its change ${change})`,
      );
    });
    tf.dispose(before);
  }
  const all = T1.weights.length + h1.weights.length;
  assert.ok(moved.size > 0.8 * all, `only ${moved.size} of ${all} weights moved`);
  assert.ok(T1.nonTrainableWeights.every((w) => moved.has(w.name)), "T's moving statistics did not move");
  for (const m of [T1, h1, T2, h2]) m.dispose();
  opt1.dispose();
  opt2.dispose();
}

Deno.test("the MeCo step's three tapes give the single-tape update, moving statistics included", () => {
  const { x, y } = batch(32);
  sameUpdates(
    (T, h, opt, eps) => {
      const r = mecoTrainStep(T, h, opt, x, y, eps, { q: 1, alpha: 0.1, sigma: "median", gamma: 3 });
      assert.ok(r.ce > 0 && r.l1 > 0 && r.svgdMs > 0 && r.hMs > 0, JSON.stringify(r));
    },
    (T, h, opt, eps) => singleTapeStep(T, h, opt, x, y, eps, 3),
    1e-4,
  );
  tf.dispose([x, y]);
});

Deno.test("the MeCo step recomputed piece by piece gives the update of whole tapes", () => {
  // Q = 0: the SVGD step's gradients in parts differ from the whole batch's by rounding (tested below), and the L1
  // term's sign amplifies rounding over two steps; the recomputed passes themselves equal the first ones.
  const { x, y } = batch(32);
  const opts = { q: 0, alpha: 0.1, sigma: "median" as const, gamma: 3 };
  let plan: ReturnType<typeof mecoMemoryPlan> | undefined;
  sameUpdates(
    (T, h, opt, eps) => {
      plan ??= mecoMemoryPlan(T, 32, 1);
      mecoTrainStep(T, h, opt, x, y, eps, { ...opts, tapeBudget: 1 });
    },
    (T, h, opt, eps) => void mecoTrainStep(T, h, opt, x, y, eps, opts),
    1e-6,
  );
  assert.ok(plan!.recompute && plan!.pieces.length >= 8, `${plan!.pieces.length} pieces`);
  assert.equal(plan!.svgdChunks, 32);
  tf.dispose([x, y]);
});

Deno.test("the SVGD step's gradients taken in parts of the batch equal the whole batch's", () => {
  const T = resnet8x({ depth: 18, seed: 0, width: 1 / 16, inputShape: [28, 28, 1], classes: 10 });
  const h = perturbationNet({ imageShape: [28, 28, 1], width: 4, bound: 0.5, seed: 0 });
  const { x, y } = batch(32);
  const eps = tf.randomNormal(x.shape, 0, 1, "float32", 5) as tf.Tensor4D;
  const whole = worstCaseBatch(T, h, x, y, eps, { q: 2, alpha: 0.1, sigma: "median" });
  for (const chunks of [3, 32]) {
    const parts = worstCaseBatch(T, h, x, y, eps, { q: 2, alpha: 0.1, sigma: "median", chunks });
    assert.ok(tf.max(tf.abs(tf.sub(parts, whole))).dataSync()[0] < 1e-5, `${chunks} parts`);
    parts.dispose();
  }
  assert.ok(tf.max(tf.abs(tf.sub(whole, x))).dataSync()[0] > 0.05, "the batch did not move");
  tf.dispose([x, y, eps, whole]);
  T.dispose();
  h.dispose();
});

Deno.test("MeCo training lowers its loss, keeps memory flat, and deploys with fresh ε per query", async () => {
  const T = lenet5({ seed: 0 });
  const h0 = perturbationNet({ imageShape: [28, 28, 1], width: 4, bound: 0.2, seed: 0 });
  const before = tf.memory().numTensors;
  const { perturb, stats } = await trainMeco(T, h0, data, {
    gamma: 1,
    q: 1,
    alpha: 0.01,
    sigma: "median",
    bound: 0.2,
    width: 4,
    epochs: 3,
    batchSize: 64,
    lr: 2e-3,
    variant: "paper",
    seed: 0,
  });
  assert.equal(tf.memory().numTensors, before, "training leaked tensors");
  assert.ok(stats[2].loss < stats[0].loss, `loss ${stats.map((s) => s.loss.toFixed(3))}`);
  // The SVGD displacement is recorded next to h's: a real fraction of α per pixel.
  assert.ok(stats.every((s) => s.svgdRms > 0.002 && s.svgdRms <= 0.01 + 1e-6), `svgd ${stats.map((s) => s.svgdRms)}`);
  assert.ok(stats.every((s) => s.hRms > 0.01), `h ${stats.map((s) => s.hRms)}`);
  const noDro = await trainMeco(T, perturb, subset(data, 64, { seed: 3 }), {
    gamma: 1,
    q: 0,
    alpha: 0.01,
    sigma: "median",
    bound: 0.2,
    width: 4,
    epochs: 1,
    batchSize: 64,
    lr: 2e-3,
    variant: "paper",
    seed: 1,
  });
  assert.equal(noDro.stats[0].svgdRms, 0, "Q = 0 moved the batch");
  const defense = mecoDefense({ target: T, perturb }, { seed: 0 });
  const { x, y } = batch(8);
  const p1 = defense.predict(x), p2 = defense.predict(x);
  assert.ok(tf.max(tf.abs(tf.sub(p1, p2))).dataSync()[0] > 0, "two queries got the same ε");
  const sums = tf.sum(p1, 1).dataSync();
  assert.ok(sums.every((s) => Math.abs(s - 1) < 1e-5));
  tf.dispose([x, y, p1, p2]);
  T.dispose();
  perturb.dispose();
});

Deno.test("MeCo's optimizer steps as tf.train.adam does", () => {
  const shapes = [[3, 4, 5], [5], [7]];
  const initial = shapes.map((shape, i) => tf.randomNormal(shape, 0, 1, "float32", 8 + i));
  const a = initial.map((t) => tf.variable(t)), b = initial.map((t) => tf.variable(t));
  const ours = mecoOptimizer(0.01), theirs = tf.train.adam(0.01);
  for (let t = 0; t < 25; t++) {
    // The last variable's gradients are always about ε: there the two would part if ε differed.
    const grads = shapes.map((shape, i) => tf.randomNormal(shape, 0, i === 2 ? 1e-7 : 1, "float32", 20 + 3 * t + i));
    ours.applyGradients(a.map((v, i) => ({ name: v.name, tensor: grads[i] })));
    theirs.applyGradients(b.map((v, i) => ({ name: v.name, tensor: grads[i] })));
    tf.dispose(grads);
  }
  a.forEach((v, i) => {
    const diff = tf.max(tf.abs(tf.sub(v, b[i]))).dataSync()[0];
    assert.ok(diff < 1e-5, `variable ${i}: ${diff}`);
    assert.ok(tf.max(tf.abs(tf.sub(v, initial[i]))).dataSync()[0] > 0.05, "the variables moved");
  });
  ours.dispose();
  theirs.dispose();
  tf.dispose([...a, ...b, ...initial]);
});
