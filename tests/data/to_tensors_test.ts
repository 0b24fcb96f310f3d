import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { gatherBatch } from "../../lib/data/batches.ts";
import type { Dataset } from "../../lib/data/dataset.ts";
import { toTensors } from "../../lib/data/to_tensors.ts";
import { assert } from "./_helpers.ts";

const ds: Dataset = {
  name: "toy",
  split: "test",
  images: Float32Array.from({ length: 3 * 2 * 2 * 3 }, (_, i) => i / 36),
  labels: Int32Array.from([2, 0, 1]),
  n: 3,
  height: 2,
  width: 2,
  channels: 3,
  numClasses: 4,
};

Deno.test("toTensors builds NHWC images and int or one-hot labels", async () => {
  await tf.setBackend("cpu");
  const before = tf.memory().numTensors;
  const { xs, ys } = toTensors(ds);
  assert.deepEqual(xs.shape, [3, 2, 2, 3]);
  assert.equal(xs.dtype, "float32");
  assert.deepEqual(Array.from(await xs.data()), Array.from(ds.images));
  assert.equal(ys.dtype, "int32");
  assert.deepEqual(Array.from(await ys.data()), [2, 0, 1]);
  const oh = toTensors(ds, gatherBatch(ds, [1, 0]), { oneHot: true });
  assert.deepEqual(oh.xs.shape, [2, 2, 2, 3]);
  assert.deepEqual(oh.ys.shape, [2, 4]);
  assert.equal(oh.ys.dtype, "float32");
  assert.deepEqual(await oh.ys.array(), [[1, 0, 0, 0], [0, 0, 1, 0]]);
  tf.dispose([xs, ys, oh.xs, oh.ys]);
  assert.equal(tf.memory().numTensors, before);
});
