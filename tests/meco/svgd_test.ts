import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { bandwidthSq, pairwiseSqDist, svgdDirection, svgdStep } from "../../lib/meco/svgd.ts";

await initBackend("wasm");

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5, what = "") {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

Deno.test("SVGD step on three 1-D particles equals the hand computation", () => {
  // Particles 0, 1, 3; loss gradients 1, 0, −1; σ = 1; α = 0.5.
  // k01 = e^{-1/2}, k02 = e^{-9/2}, k12 = e^{-2}.
  // φ_0 = (1/3)[(1 + 0 − k02) + (0 − k01·1 − k02·3)]
  // φ_1 = (1/3)[(k01 + 0 − k12) + (k01·1 + 0 − k12·2)]
  // φ_2 = (1/3)[(k02 + 0 − 1) + (k02·3 + k12·2 + 0)]
  const k01 = Math.exp(-0.5), k02 = Math.exp(-4.5), k12 = Math.exp(-2);
  const phi = [
    (1 - k02 - k01 - 3 * k02) / 3,
    (k01 - k12 + k01 - 2 * k12) / 3,
    (k02 - 1 + 3 * k02 + 2 * k12) / 3,
  ];
  // Literal numbers, worked by hand, guard the formula above as well.
  close(phi, [0.1163445, 0.2690185, -0.2282978], 1e-6, "phi(hand)");
  const x = tf.tensor2d([[0], [1], [3]]);
  const g = tf.tensor2d([[1], [0], [-1]]);
  close(svgdDirection(x, g, 1).dataSync(), phi, 1e-6, "phi");
  const x1 = svgdStep(x, g, { alpha: 0.5, sigma: 1 });
  close(x1.dataSync(), [0 + 0.5 * phi[0], 1 + 0.5 * phi[1], 3 + 0.5 * phi[2]], 1e-6, "x1");
  tf.dispose([x, g, x1]);
});

Deno.test("the kernel-gradient term repels: with zero loss gradient particles spread apart", () => {
  const x = tf.tensor2d([[0, 0], [0.3, 0.1], [0.1, 0.4], [-0.2, 0.2]]);
  const zero = tf.zerosLike(x);
  const before = pairwiseSqDist(x).dataSync();
  const x1 = svgdStep(x, zero, { alpha: 0.05, sigma: 0.5 });
  const after = pairwiseSqDist(x1 as tf.Tensor2D).dataSync();
  for (let i = 0; i < 4; i++) {
    for (let j = i + 1; j < 4; j++) {
      assert.ok(after[i * 4 + j] > before[i * 4 + j], `pair ${i},${j} moved closer`);
    }
  }
  // The mean is preserved by the repulsion term (it is antisymmetric).
  close(tf.mean(x1, 0).dataSync(), tf.mean(x, 0).dataSync(), 1e-6, "mean");
  tf.dispose([x, zero, x1]);
});

Deno.test("the drive term moves particles up the loss, smoothed by the kernel", () => {
  const x = tf.tensor2d([[0], [10]]); // far apart: k ≈ 0 across
  const g = tf.tensor2d([[2], [-4]]);
  const phi = svgdDirection(x, g, 1).dataSync();
  close(phi, [1, -2], 1e-6, "phi"); // (1/N)·k_ii·g_i with N = 2
  tf.dispose([x, g]);
});

Deno.test("median bandwidth: 2σ² = median squared distance / log(N + 1)", () => {
  const x = tf.tensor2d([[0], [1], [3]]); // squared distances 1, 9, 4 → median 4
  const s2 = bandwidthSq(pairwiseSqDist(x), "median");
  close([s2], [4 / (2 * Math.log(4))], 1e-9, "sigma^2");
  x.dispose();
});

Deno.test("svgdStep keeps image shape and clips to the range", () => {
  const x = tf.randomUniform([5, 4, 4, 1], -1, 1, "float32", 3);
  const g = tf.mul(tf.onesLike(x), 100);
  const x1 = svgdStep(x, g, { alpha: 1, sigma: "median", clip: [-1, 1] });
  assert.deepEqual(x1.shape, [5, 4, 4, 1]);
  assert.equal(tf.max(x1).dataSync()[0], 1);
  tf.dispose([x, g, x1]);
});

Deno.test("step 'rms': one step moves by an RMS of exactly α, along Eq. 11's direction", () => {
  const x = tf.randomUniform([6, 10], -0.5, 0.5, "float32", 4) as tf.Tensor2D;
  const g = tf.mul(tf.randomNormal([6, 10], 0, 1, "float32", 5), 1e-4) as tf.Tensor2D; // tiny gradients, as a trained target's
  const phi = svgdDirection(x, g, "median");
  const x1 = svgdStep(x, g, { alpha: 0.1, step: "rms", sigma: "median" });
  const d = tf.sub(x1, x);
  close([Math.sqrt(tf.mean(tf.square(d)).dataSync()[0])], [0.1], 1e-5, "rms");
  const cos = tf.sum(tf.mul(d, phi)).dataSync()[0] /
    Math.sqrt(tf.sum(tf.square(d)).dataSync()[0] * tf.sum(tf.square(phi)).dataSync()[0]);
  close([cos], [1], 1e-5, "cosine with phi");
  tf.dispose([x, g, phi, x1, d]);
});

Deno.test("step 'rms': the repulsion alone spreads particles apart; a lone particle with no gradient stays", () => {
  const x = tf.tensor2d([[0, 0], [0.3, 0.1], [0.1, 0.4], [-0.2, 0.2]]);
  const before = pairwiseSqDist(x).dataSync();
  const x1 = svgdStep(x, tf.zerosLike(x), { alpha: 0.05, step: "rms", sigma: "median" });
  const after = pairwiseSqDist(x1 as tf.Tensor2D).dataSync();
  for (let i = 0; i < 4; i++) {
    for (let j = i + 1; j < 4; j++) assert.ok(after[i * 4 + j] > before[i * 4 + j], `pair ${i},${j} moved closer`);
  }
  const one = tf.tensor2d([[0.2, -0.3]]);
  const still = svgdStep(one, tf.zerosLike(one), { alpha: 0.05, step: "rms", sigma: "median" });
  assert.deepEqual(Array.from(still.dataSync()), Array.from(one.dataSync()));
  tf.dispose([x, x1, one, still]);
});
