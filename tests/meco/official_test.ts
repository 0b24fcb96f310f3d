import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { type Dataset, loadDataset, subset, toSignedRange } from "../../lib/data/mod.ts";
import { mecoDefense } from "../../lib/defenses/meco.ts";
import {
  drawOfficialWeights,
  groupedConv,
  officialPerturbation,
  officialPerturbationOurUnits,
  officialSvgdStep,
  officialTrainStep,
  officialWorstCase,
} from "../../lib/meco/official.ts";
import { trainMeco } from "../../lib/meco/train.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import { perturbationNet } from "../../lib/models/perturbation.ts";
import { crossEntropy } from "../../lib/train/losses.ts";

await initBackend("wasm");
const data: Dataset = toSignedRange(subset(await loadDataset("mnist", "train"), 256, { seed: 2 }));
const images = (from: number, n: number) =>
  tf.tensor4d(data.images.subarray(from * 784, (from + n) * 784), [n, 28, 28, 1]);
const rms = (t: tf.Tensor) => Math.sqrt(tf.mean(tf.square(t)).dataSync()[0]);

Deno.test("per-image grouped convolutions equal tf.conv2d with each image's own kernel", () => {
  const x = tf.randomNormal([2, 6, 5, 2], 0, 1, "float32", 1) as tf.Tensor4D;
  const w = tf.randomNormal([2, 18, 3], 0, 1, "float32", 2) as tf.Tensor3D;
  const b = tf.randomNormal([2, 1, 3], 0, 1, "float32", 3) as tf.Tensor3D;
  const got = groupedConv(x, { w, b, k: 3 }, w);
  for (let i = 0; i < 2; i++) {
    // [9·cin, cout] in (ky, kx, cin) order is tf's [3, 3, cin, cout] kernel.
    const kernel = tf.reshape(tf.slice(w, [i, 0, 0], [1, 18, 3]), [3, 3, 2, 3]) as tf.Tensor4D;
    const xi = tf.slice(x, [i, 0, 0, 0], [1, 6, 5, 2]);
    const want = tf.add(
      tf.conv2d(xi, kernel, 1, "same", "NHWC", 2),
      tf.reshape(tf.slice(b, [i, 0, 0], [1, 1, 3]), [3]),
    );
    const diff = tf.max(tf.abs(tf.sub(tf.slice(got, [i, 0, 0, 0], [1, 6, 5, 3]), want))).dataSync()[0];
    assert.ok(diff < 1e-4, `image ${i}: max diff ${diff}`);
  }
  const w1 = tf.randomNormal([2, 2, 4], 0, 1, "float32", 4) as tf.Tensor3D;
  const got1 = groupedConv(x, { w: w1, k: 1 }, w1);
  const want1 = tf.conv2d(
    tf.slice(x, [1, 0, 0, 0], [1, 6, 5, 2]),
    tf.reshape(tf.slice(w1, [1, 0, 0], [1, 2, 4]), [1, 1, 2, 4]) as tf.Tensor4D,
    1,
    "same",
  );
  assert.ok(tf.max(tf.abs(tf.sub(tf.slice(got1, [1, 0, 0, 0], [1, 6, 5, 4]), want1))).dataSync()[0] < 1e-4);
});

Deno.test("official h: each image perturbed on its own, ε times a per-channel unit map, weight noise fresh per pass", () => {
  const a = images(0, 3), b = images(3, 3);
  const w = drawOfficialWeights(3, 1, 2, 11);
  const opts = { epsilon: 0.4, weightNoise: 0, seed: 0 };
  const ha = officialPerturbation(a, w, opts);
  // Replace images 1 and 2: image 0's perturbation must not change (per-image weights and normalisation).
  const mixed = tf.concat([tf.slice(a, [0, 0, 0, 0], [1, 28, 28, 1]), tf.slice(b, [1, 0, 0, 0], [2, 28, 28, 1])]);
  const hm = officialPerturbation(mixed as tf.Tensor4D, w, opts);
  const d0 = tf.max(
    tf.abs(tf.sub(tf.slice(ha, [0, 0, 0, 0], [1, 28, 28, 1]), tf.slice(hm, [0, 0, 0, 0], [1, 28, 28, 1]))),
  );
  assert.ok(d0.dataSync()[0] < 1e-5, "image 0's perturbation depends on the other images");
  for (let i = 0; i < 3; i++) {
    const r = rms(tf.slice(ha, [i, 0, 0, 0], [1, 28, 28, 1]));
    assert.ok(Math.abs(r - 0.4) < 0.01, `image ${i}: RMS ${r}, want ε = 0.4`);
  }
  // The normalisation's mean shift does not matter to h (BatchNorm after a bias-free convolution).
  const h2 = officialPerturbation(tf.add(a, 0.42) as tf.Tensor4D, w, opts);
  assert.ok(tf.max(tf.abs(tf.sub(h2, ha))).dataSync()[0] < 1e-3);
  // Different images of one batch get different random weights: identical inputs, different outputs.
  const same = tf.concat([
    tf.slice(a, [0, 0, 0, 0], [1, 28, 28, 1]),
    tf.slice(a, [0, 0, 0, 0], [1, 28, 28, 1]),
    tf.slice(a, [0, 0, 0, 0], [1, 28, 28, 1]),
  ]) as tf.Tensor4D;
  const hs = officialPerturbation(same, w, opts);
  assert.ok(rms(tf.sub(tf.slice(hs, [0, 0, 0, 0], [1, 28, 28, 1]), tf.slice(hs, [1, 0, 0, 0], [1, 28, 28, 1]))) > 0.1);
  // Deployment: fresh weight noise per forward pass; no noise: deterministic given the weights.
  const dep = { epsilon: 1, weightNoise: 1.5 };
  const n1 = officialPerturbation(a, w, { ...dep, seed: 1 }), n2 = officialPerturbation(a, w, { ...dep, seed: 2 });
  assert.ok(rms(tf.sub(n1, n2)) > 0.1, "weight noise does not change h");
  assert.equal(rms(tf.sub(officialPerturbation(a, w, opts), ha)), 0);
  // Our units: 2·0.3081·s·ε per pixel.
  const ours = officialPerturbationOurUnits(a, w, 0.5, opts);
  assert.ok(Math.abs(rms(ours) - 2 * 0.3081 * 0.5 * 0.4) < 0.005, `RMS ${rms(ours)}`);
});

Deno.test("official SVGD step equals the hand computation (0.05·median bandwidth, kernel term subtracted)", () => {
  // Particles 0, 1, 3 (1-D); gradients 1, 0, −1; stepsize 0.5. Distances over the full 3×3 matrix:
  // 0,0,0,1,1,2,2,3,3 → median 1 → h = 0.05/log 4.
  const h = 0.05 / Math.log(4);
  const z = [0, 1, 3], g = [1, 0, -1];
  const want = z.map((zi) => {
    let kg = 0, dk = 0;
    for (let j = 0; j < 3; j++) {
      const k = Math.exp(-((zi - z[j]) ** 2) / h);
      kg += k * g[j];
      dk += k * (zi - z[j]) * 2 / h;
    }
    return zi - 0.5 * (kg + dk) / 3;
  });
  const got = officialSvgdStep(tf.tensor2d(z, [3, 1]), tf.tensor2d(g, [3, 1]), 0.5).dataSync();
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-5, `${i}: ${got[i]} vs ${want[i]}`);
  // Two close particles with zero gradient move toward each other (the printed sign attracts).
  const pair = officialSvgdStep(tf.tensor2d([[0], [0.01]]), tf.zeros([2, 1]), 1e-6).dataSync();
  assert.ok(pair[1] - pair[0] < 0.01, `pair ${pair[0]}, ${pair[1]}`);
});

Deno.test("official training: inner step raises the clean loss but barely moves; only the target learns", () => {
  const T = lenet5({ seed: 0 });
  const x = images(0, 64);
  const y = tf.tensor1d(data.labels.subarray(0, 64), "int32");
  const z = officialWorstCase(T, x, y, { q: 1, stepsize: 100, gamma: 0.2, training: true });
  assert.ok(rms(tf.sub(z, x)) > 0, "the inner step did not move");
  const ce = (v: tf.Tensor4D) => crossEntropy(T.apply(v) as tf.Tensor2D, y).dataSync()[0];
  assert.ok(ce(z) > ce(x), `clean CE ${ce(x)} -> ${ce(z)}`);
  const opt = tf.train.adam(1e-3);
  const opts = { gamma: 0.2, q: 1, stepsize: 1e-4, hidden: 2, epochs: 1, batchSize: 64, lr: 1e-3, seed: 0 };
  const first = officialTrainStep(T, opt, x, y, opts, 0);
  let last = first;
  for (let s = 1; s < 15; s++) last = officialTrainStep(T, opt, x, y, opts, s);
  assert.ok(last.loss < first.loss, `loss ${first.loss} -> ${last.loss}`);
  assert.ok(
    first.hRms > 2 * 0.3081 * 0.5 * 0.3 * 0.95 && first.hRms < 2 * 0.3081 * 0.5 * 0.6 * 1.05,
    `h RMS ${first.hRms}`,
  );
  assert.ok(first.svgdRms < 1e-4, `official SVGD moved ${first.svgdRms}`);
  opt.dispose();
  T.dispose();
});

Deno.test("official variant through trainMeco and mecoDefense: h untouched, fresh random answers per query", async () => {
  const T = lenet5({ seed: 1 });
  const h = perturbationNet({ imageShape: [28, 28, 1], width: 4, bound: 0.27, seed: 0 });
  const before = h.getWeights().map((w) => w.dataSync().slice());
  const { perturb, stats } = await trainMeco(T, h, data, {
    gamma: 0.2,
    q: 1,
    alpha: 1e-4,
    sigma: "median",
    bound: 0.27,
    width: 2,
    epochs: 1,
    batchSize: 64,
    lr: 1e-3,
    variant: "official",
    seed: 0,
  });
  assert.equal(perturb, h);
  h.getWeights().forEach((w, i) => assert.deepEqual(w.dataSync(), before[i]));
  assert.equal(stats.length, 1);
  assert.ok(stats[0].hRms > 0 && Number.isFinite(stats[0].loss));
  const defense = mecoDefense({ target: T, perturb }, { seed: 0, variant: "official", width: 2, bound: 0.27 });
  const x = images(0, 8);
  const p1 = defense.predict(x), p2 = defense.predict(x);
  assert.ok(tf.max(tf.abs(tf.sub(p1, p2))).dataSync()[0] > 0, "two queries got the same perturbation");
  assert.ok(tf.sum(p1, 1).dataSync().every((s) => Math.abs(s - 1) < 1e-5));
  T.dispose();
  h.dispose();
});
