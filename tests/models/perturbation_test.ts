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

Deno.test("h's folded inference form equals the model in inference mode, also after a checkpoint round trip", async () => {
  const shape: [number, number, number] = [12, 10, 2];
  const perturb = perturbationNet({ imageShape: shape, width: 6, bound: 0.7, seed: 3 });
  // Trained-looking BatchNorms: every gamma, beta and moving statistic away from its initial value.
  perturb.setWeights(
    perturb.getWeights().map((w, i) =>
      tf.tidy(() => {
        const r = tf.randomUniform(w.shape, 0.5, 1.5, "float32", 100 + i);
        return w.shape.length === 1 ? tf.add(tf.mul(w, r), tf.sub(r, 1)) : tf.mul(w, r);
      })
    ),
  );
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
