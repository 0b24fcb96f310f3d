/**
 * `deno task demo [--quick]`: the main job on the embedded default dataset,
 * MNIST. First a LeNet-5 trained for one epoch (loads MNIST through lib/data,
 * prints the test accuracy: a minute on two cores); then, unless `--quick`,
 * the MNIST experiment (victim, MeCo, DFME) at the `local` profile through the
 * runner — cached cells are reused, so a second run only prints the table.
 *
 * @module
 */
import { initBackend } from "../backend/mod.ts";
import { onednnAdvice } from "../system/optional_parts.ts";
import { parseCli } from "./args.ts";
import { loadDataset, toSignedRange } from "../data/mod.ts";
import { ensureResults } from "../experiments/ensure.ts";
import { lenet5 } from "../models/lenet.ts";
import { loadReport, reportColumns, textTable } from "../report/mod.ts";
import { accuracy, predictorOf } from "../metrics/accuracy.ts";
import { fit } from "../train/fit.ts";

async function quickLenet(): Promise<void> {
  const t0 = performance.now();
  const [train, test] = await Promise.all([loadDataset("mnist", "train"), loadDataset("mnist", "test")]);
  console.log(`MNIST: ${train.n} train / ${test.n} test images, ${train.height}x${train.width}x${train.channels}`);
  const model = lenet5({ seed: 0 });
  await fit(model, toSignedRange(train), {
    epochs: 1,
    batchSize: 128,
    optimizer: "adam",
    lr: 1e-3,
    seed: 0,
    onEpoch: (e, loss) => console.log(`epoch ${e + 1}: train loss ${loss.toFixed(4)}`),
  });
  const acc = accuracy(predictorOf(model), toSignedRange(test));
  model.dispose();
  console.log(`LeNet-5 test accuracy after 1 epoch: ${(acc * 100).toFixed(2)}%`);
  console.log(`wall time: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

const CLI = {
  usage: "deno task demo [--quick]",
  description: "Trains LeNet-5 on MNIST for one epoch, then runs (or reads from the cache) the MNIST experiment.",
  options: { quick: { type: "boolean", help: "only the one-epoch LeNet-5" } },
} as const;

if (import.meta.main) {
  const { values } = parseCli(CLI);
  const backend = await initBackend();
  console.log(`backend: ${backend.reason}`);
  const advice = onednnAdvice();
  if (advice !== "") console.log(advice);
  await quickLenet();
  if (!values.quick) {
    console.log("\nMNIST experiment (configs/mnist_dfme.yaml, profile local): victim, MeCo, DFME with 2M queries");
    const { dir } = await ensureResults("mnist_dfme.yaml", "local");
    const rep = await loadReport(dir);
    console.log(textTable(rep.table, reportColumns(rep.summary.meta.name)));
    console.log(`results: ${dir}`);
  }
}
