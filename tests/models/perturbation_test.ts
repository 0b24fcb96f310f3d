import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/backend/mod.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import { perturbationInference, perturbationNet } from "../../lib/models/perturbation.ts";
import { loadModel, saveModel } from "../../lib/train/checkpoint.ts";

await initBackend();

function maxRelDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / Math.max(tf.max(tf.abs(b)).dataSync()[0], 1e-12));
}

/**
 * Gives `perturb` trained-looking weights: every kernel scaled and every gamma, beta and moving statistic moved away
 * from its initial value, by factors in [0.5, 1.5) drawn from `seed`.
 */
function trainedLooking(perturb: tf.LayersModel, seed: number): void {
  const weights = perturb.getWeights().map((w, i) =>
    tf.tidy(() => {
      const r = tf.randomUniform(w.shape, 0.5, 1.5, "float32", seed + i);
      return w.shape.length === 1 ? tf.add(tf.mul(w, r), tf.sub(r, 1)) : tf.mul(w, r);
    })
  );
  perturb.setWeights(weights);
  tf.dispose(weights);
}

Deno.test("h's folded inference form equals the model in inference mode, also after a checkpoint round trip", async () => {
  const shape: [number, number, number] = [12, 10, 2];
  const perturb = perturbationNet({ imageShape: shape, width: 6, bound: 0.7, seed: 3 });
  trainedLooking(perturb, 100);
  const x = tf.randomUniform([5, ...shape], -1, 1, "float32", 1) as tf.Tensor4D;
  const eps = tf.randomNormal([5, ...shape], 0, 1, "float32", 2) as tf.Tensor4D;
  const ref = perturb.apply([x, eps], { training: false }) as tf.Tensor4D;
  const h = perturbationInference(perturb);
  assert.ok(h !== undefined, "the perturbation net is recognised");
  const folded = h(x, eps);
  assert.ok(tf.max(tf.abs(ref)).dataSync()[0] > 0.05, "a perturbation that is not ~0");
  assert.ok(maxRelDiff(folded, ref) < 1e-5, `folded vs layers: ${maxRelDiff(folded, ref)}`);
  const tensors = tf.memory().numTensors;
  h(x, eps).dispose();
  assert.equal(tf.memory().numTensors, tensors, "no tensor left behind");
  const dir = await Deno.makeTempDir({ prefix: "meco-h-" });
  try {
    await saveModel(perturb, `${dir}/h`);
    const again = await loadModel(`${dir}/h`);
    assert.ok(maxRelDiff(perturbationInference(again)!(x, eps), ref) < 1e-5);
    again.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // Any other model has no folded form, nor one laid out alike with another convolution.
  const biased = perturbationNet({ imageShape: shape, width: 6, bound: 0.7, seed: 3 });
  const cfg = biased.toJSON(null, false) as unknown as { config: { layers: { config: Record<string, unknown> }[] } };
  for (const l of cfg.config.layers) if ("use_bias" in l.config) l.config.use_bias = true;
  assert.equal(perturbationInference(await tf.models.modelFromJSON(cfg as unknown as tf.io.ModelJSON)), undefined);
  biased.dispose();
  const other = lenet5({ seed: 0 });
  assert.equal(perturbationInference(other), undefined);
  tf.dispose([x, eps, ref, folded]);
  other.dispose();
  perturb.dispose();
});

Deno.test("h's differentiable folded form: the inference-mode value and input gradients, no weight gradient", () => {
  const shape: [number, number, number] = [10, 8, 1];
  const perturb = perturbationNet({ imageShape: shape, width: 6, bound: 0.9, seed: 4 });
  trainedLooking(perturb, 200);
  const x = tf.randomUniform([4, ...shape], -1, 1, "float32", 5) as tf.Tensor4D;
  const eps = tf.randomNormal([4, ...shape], 0, 1, "float32", 6) as tf.Tensor4D;
  const dy = tf.randomNormal([4, ...shape], 0, 1, "float32", 7);
  const h = perturbationInference(perturb, { differentiable: true })!;
  const layers = (a: tf.Tensor, b: tf.Tensor) => perturb.apply([a, b], { training: false }) as tf.Tensor;
  const loss = (f: (a: tf.Tensor4D, b: tf.Tensor4D) => tf.Tensor) => (a: tf.Tensor, b: tf.Tensor) =>
    tf.sum(tf.mul(f(a as tf.Tensor4D, b as tf.Tensor4D), dy));
  const ours = tf.grads(loss(h))([x, eps]), theirs = tf.grads(loss(layers))([x, eps]);
  assert.ok(maxRelDiff(h(x, eps), layers(x, eps)) < 1e-5, "value");
  assert.ok(maxRelDiff(ours[0], theirs[0]) < 1e-4, `dx: ${maxRelDiff(ours[0], theirs[0])}`);
  assert.ok(maxRelDiff(ours[1], theirs[1]) < 1e-4, `deps: ${maxRelDiff(ours[1], theirs[1])}`);
  assert.ok(tf.max(tf.abs(theirs[0])).dataSync()[0] > 1e-3, "a gradient that is not ~0");
  // Only the inputs' gradients run: no Conv2DBackpropFilter (weights are constants in this form).
  const kernels: string[] = [];
  const profile = tf.profile(() => tf.grads(loss(h))([x, eps]));
  return profile.then((info) => {
    for (const k of info.kernels) kernels.push(k.name);
    assert.ok(kernels.includes("Conv2DBackpropInput"), kernels.join());
    assert.ok(!kernels.includes("Conv2DBackpropFilter"), kernels.join());
    tf.dispose([x, eps, dy, ...ours, ...theirs]);
    perturb.dispose();
  });
});
