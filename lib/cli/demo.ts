/**
 * `deno task demo`: the main job on the embedded default dataset, MNIST.
 * Loads MNIST through lib/data, trains a LeNet-5 for one epoch on the default
 * backend and prints the test accuracy.
 *
 * @module
 */
import { initBackend } from "../backend/mod.ts";
import { loadDataset } from "../data/mod.ts";
import { lenet5 } from "../models/lenet.ts";
import { accuracy, predictorOf } from "../train/evaluate.ts";
import { fit } from "../train/fit.ts";

if (import.meta.main) {
  const backend = await initBackend();
  console.log(`backend: ${backend.reason}`);
  const t0 = performance.now();
  const [train, test] = await Promise.all([loadDataset("mnist", "train"), loadDataset("mnist", "test")]);
  console.log(`MNIST: ${train.n} train / ${test.n} test images, ${train.height}x${train.width}x${train.channels}`);
  const model = lenet5({ seed: 0 });
  await fit(model, train, {
    epochs: 1,
    batchSize: 128,
    optimizer: "adam",
    lr: 1e-3,
    seed: 0,
    onEpoch: (e, loss) => console.log(`epoch ${e + 1}: train loss ${loss.toFixed(4)}`),
  });
  const acc = accuracy(predictorOf(model), test);
  console.log(`LeNet-5 test accuracy after 1 epoch: ${(acc * 100).toFixed(2)}%`);
  console.log(`wall time: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
