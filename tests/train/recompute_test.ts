import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { resnet8x } from "../../lib/models/resnet_8x.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import { activationBytes, chainForward, chainGrads, modelSegments, type Piece } from "../../lib/train/recompute.ts";

await initBackend("wasm");

const small = () => resnet8x({ depth: 18, seed: 0, width: 1 / 16, inputShape: [32, 32, 3], classes: 10 });
const pieces = (parts: tf.LayersModel[]): Piece[] =>
  parts.map((m) => ({
    run: (t) => m.apply(t, { training: true }) as tf.Tensor,
    vars: m.trainableWeights.map((v) => v.read() as tf.Variable),
  }));

Deno.test("a ResNet cut at its blocks: the pieces, applied in order, compute the model", () => {
  const model = small();
  const x = tf.randomUniform([4, 32, 32, 3], -1, 1, "float32", 1);
  const want = model.apply(x, { training: false }) as tf.Tensor;
  for (const count of [2, 5, 100]) {
    const parts = modelSegments(model, count);
    assert.ok(parts.length > 1 && parts.length <= count, `${count}: ${parts.length} pieces`);
    const got = parts.reduce((t, m) => m.apply(t, { training: false }) as tf.Tensor, x);
    assert.ok(tf.max(tf.abs(tf.sub(got, want))).dataSync()[0] < 1e-5, `${count} pieces`);
    // Every weight belongs to exactly one piece.
    const names = parts.flatMap((m) => m.weights.map((w) => w.name)).sort();
    assert.deepEqual(names, model.weights.map((w) => w.name).sort());
  }
  // The model still saves and loads as itself after sharing its layers with the pieces.
  const json = JSON.stringify(model.toJSON(null, false));
  assert.ok(!json.includes("_part"), "a piece leaked into the model's topology");
  tf.dispose([x, want]);
  model.dispose();
});

Deno.test("a model with no cut comes back whole; layer outputs are counted per example", () => {
  const x = tf.input({ shape: [8] });
  const h = tf.layers.dense({ units: 8 }).apply(x) as tf.SymbolicTensor;
  const skip = tf.model({ inputs: x, outputs: tf.layers.add().apply([x, h]) as tf.SymbolicTensor });
  assert.equal(modelSegments(skip, 4)[0], skip);
  assert.equal(activationBytes(skip, 10), 4 * 10 * (8 + 8 + 8));
  const lenet = lenet5({ seed: 0 });
  assert.ok(activationBytes(lenet, 128) < 16 * 2 ** 20);
  lenet.dispose();
  skip.dispose();
});

Deno.test("recomputed piece by piece: the gradients and moving statistics of one tape", () => {
  const x = tf.randomUniform([8, 32, 32, 3], -1, 1, "float32", 2);
  const y = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], "int32");
  const head = (logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(y, 10), logits) as tf.Scalar;
  const a = small(), b = small();
  const one = chainGrads(pieces([a]), x, head, { recompute: false, models: [a] });
  const before = tf.memory().numTensors;
  const many = chainGrads(pieces(modelSegments(b, 6)), x, head, { recompute: true, models: [b] });
  // Only the results stay: the value and one gradient per variable.
  assert.equal(tf.memory().numTensors - before, 1 + Object.keys(many.grads).length);
  assert.ok(Math.abs(one.value.dataSync()[0] - many.value.dataSync()[0]) < 1e-6);
  assert.equal(Object.keys(many.grads).length, a.trainableWeights.length);
  a.trainableWeights.forEach((w, i) =>
    tf.tidy(() => {
      const [g, h] = [
        one.grads[(w.read() as tf.Variable).name],
        many.grads[(b.trainableWeights[i].read() as tf.Variable).name],
      ];
      const scale = tf.max(tf.abs(g)).dataSync()[0];
      assert.ok(scale > 0, `${w.name} has no gradient`);
      assert.ok(tf.max(tf.abs(tf.sub(g, h))).dataSync()[0] <= 1e-5 * Math.max(scale, 1e-3), w.name);
    })
  );
  a.nonTrainableWeights.forEach((w, i) =>
    assert.ok(tf.max(tf.abs(tf.sub(w.read(), b.nonTrainableWeights[i].read()))).dataSync()[0] < 1e-6, w.name)
  );
  // A forward pass that leaves the moving statistics as they were.
  const stats = b.nonTrainableWeights.map((w) => w.read().clone());
  const out = chainForward(pieces(modelSegments(b, 6)), x, [b]);
  assert.ok(tf.max(tf.abs(tf.sub(out, b.apply(x, { training: true }) as tf.Tensor))).dataSync()[0] < 1e-5);
  tf.dispose([x, y, out, one.value, many.value, ...Object.values(one.grads), ...Object.values(many.grads), ...stats]);
  a.dispose();
  b.dispose();
});
