import {
  DATASET_NAMES,
  datasetMeta,
  type DatasetName,
  DATASETS,
  isDatasetName,
  loadDataset,
} from "../../lib/data/registry.ts";
import { assert } from "./_helpers.ts";

Deno.test("registry lists the five datasets with consistent metadata", () => {
  assert.deepEqual([...DATASET_NAMES].sort(), [
    "cifar10",
    "cifar100",
    "fashion_mnist",
    "miniimagenet",
    "mnist",
  ]);
  const shapes: Record<DatasetName, number[]> = {
    mnist: [28, 28, 1, 10, 60000],
    fashion_mnist: [28, 28, 1, 10, 60000],
    cifar10: [32, 32, 3, 10, 50000],
    cifar100: [32, 32, 3, 100, 50000],
    miniimagenet: [84, 84, 3, 100, 50000],
  };
  for (const name of DATASET_NAMES) {
    const m = datasetMeta(name);
    assert.deepEqual([
      m.height,
      m.width,
      m.channels,
      m.numClasses,
      m.sizes.train,
    ], shapes[name]);
    assert.equal(m.sizes.test, 10000);
    assert.equal(m.classNames.length, m.numClasses);
    assert.equal(
      new Set(m.classNames).size,
      m.numClasses,
      `${name} class names unique`,
    );
  }
  assert.equal(DATASETS.cifar100.meta.coarseClassNames?.length, 20);
  assert.equal(datasetMeta("cifar100").classNames[0], "apple");
  assert.equal(datasetMeta("fashion_mnist").classNames[0], "T-shirt/top");
});

Deno.test("isDatasetName and loadDataset reject unknown names and splits", async () => {
  assert.ok(isDatasetName("mnist"));
  assert.ok(isDatasetName("miniimagenet"));
  assert.ok(!isDatasetName("imagenet"));
  assert.ok(!isDatasetName("toString"));
  await assert.rejects(
    () => loadDataset("imagenet" as DatasetName, "train"),
    (e: Error) => {
      assert.ok(e instanceof RangeError);
      assert.match(
        e.message,
        /"imagenet".*mnist, fashion_mnist, cifar10, cifar100, miniimagenet/,
      );
      return true;
    },
  );
  await assert.rejects(
    () => loadDataset("mnist", "val" as "train"),
    RangeError,
  );
});
