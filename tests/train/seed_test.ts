import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import { CROSS_ENTROPY } from "../../lib/train/losses.ts";
import { makeTrainer } from "../../lib/train/trainer.ts";

await initBackend("wasm");

function trainFew(seed: number): Float32Array {
  return tf.tidy(() => {
    const model = lenet5({ seed });
    const trainer = makeTrainer(model, tf.train.sgd(0.05), CROSS_ENTROPY);
    const x = tf.randomUniform([16, 28, 28, 1], 0, 1, "float32", seed + 100);
    const y = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 10), "int32");
    for (let i = 0; i < 3; i++) trainer.step(x, y).dispose();
    trainer.dispose();
    const flat = tf.concat(model.getWeights().map((w) => w.flatten()));
    const out = flat.dataSync() as Float32Array;
    model.dispose();
    return Float32Array.from(out);
  });
}

Deno.test("a run repeats exactly for the same seed and differs for another", () => {
  const a = trainFew(1), b = trainFew(1), c = trainFew(2);
  assert.equal(a.length, b.length);
  assert.ok(a.every((v, i) => v === b[i]), "same seed gave different weights");
  assert.ok(a.some((v, i) => v !== c[i]), "different seeds gave identical weights");
});
