import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { dfmeGenerator } from "../../lib/models/dfme_generator.ts";

await initBackend("wasm");

const count = (ws: tf.LayerVariable[]) => ws.reduce((s, w) => s + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);

// Trainable parameter counts of the PyTorch peer benchmark's Generator, computed with
// `sum(p.numel() for p in Generator(nz, ngf, channels, size).parameters())`.
const TORCH_PARAMS: [nz: number, g: number, shape: [number, number, number], params: number][] = [
  [256, 64, [28, 28, 1], 1834497],
  [256, 64, [32, 32, 3], 2329091],
  [256, 16, [28, 28, 1], 417153],
  [32, 8, [28, 28, 1], 29505],
];

Deno.test("generator output shapes: 28×28×1 and 32×32×3 pre-tanh images", () => {
  for (const imageShape of [[28, 28, 1], [32, 32, 3]] as [number, number, number][]) {
    const gen = dfmeGenerator({ seed: 0, nz: 32, width: 8, imageShape });
    const shapes = tf.tidy(() => {
      const z = tf.randomNormal([4, 32], 0, 1, "float32", 1);
      const train = gen.apply(z, { training: true }) as tf.Tensor;
      const infer = gen.predict(z) as tf.Tensor;
      // pre-tanh: the last BN (no affine) normalises each channel over the batch
      const m = tf.mean(train).dataSync()[0];
      assert.ok(Math.abs(m) < 1e-4, `batch-normalised output mean ${m}`);
      assert.ok(tf.max(tf.abs(train)).dataSync()[0] > 1, "output is not squashed by tanh");
      return [train.shape, infer.shape];
    });
    assert.deepEqual(shapes, [[4, ...imageShape], [4, ...imageShape]]);
    gen.dispose();
  }
});

Deno.test("generator trainable parameters equal the PyTorch reference's", () => {
  for (const [nz, width, imageShape, params] of TORCH_PARAMS) {
    const gen = dfmeGenerator({ seed: 0, nz, width, imageShape });
    assert.equal(count(gen.trainableWeights), params, `nz ${nz} g ${width} ${imageShape}`);
    // non-trainable: BN moving mean/var (2g + 2g + g + c channels), plus the last BN's frozen gamma = 1, beta = 0
    assert.equal(
      count(gen.nonTrainableWeights),
      2 * (2 * width + 2 * width + width + imageShape[2]) + 2 * imageShape[2],
    );
    gen.dispose();
  }
});

Deno.test("generator init is seeded", () => {
  const w = (seed: number) => {
    const gen = dfmeGenerator({ seed, nz: 16, width: 4 });
    const v = tf.tidy(() => tf.concat(gen.getWeights().map((t) => t.flatten())).dataSync() as Float32Array);
    gen.dispose();
    return Array.from(v);
  };
  assert.deepEqual(w(3), w(3));
  assert.notDeepEqual(w(3), w(4));
});

Deno.test("generator rejects image sizes not divisible by 4", () => {
  assert.throws(() => dfmeGenerator({ seed: 0, imageShape: [30, 30, 1] }), /multiples of 4/);
});

Deno.test("outputBn learned: the last BatchNorm's gamma and beta train; at initialisation the output is the fixed one's", () => {
  const fixed = dfmeGenerator({ seed: 2, nz: 16, width: 4 });
  const learned = dfmeGenerator({ seed: 2, nz: 16, width: 4, outputBn: "learned" });
  assert.equal(count(learned.trainableWeights), count(fixed.trainableWeights) + 2);
  assert.equal(count(learned.nonTrainableWeights), count(fixed.nonTrainableWeights) - 2);
  const diff = tf.tidy(() => {
    const z = tf.randomNormal([8, 16], 0, 1, "float32", 3);
    const a = fixed.apply(z, { training: true }) as tf.Tensor;
    const b = learned.apply(z, { training: true }) as tf.Tensor;
    return tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
  });
  assert.equal(diff, 0);
  fixed.dispose();
  learned.dispose();
});
