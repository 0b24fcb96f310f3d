import { gatherBatch, sequentialBatches, shuffledBatches } from "../../lib/data/batches.ts";
import type { Dataset } from "../../lib/data/dataset.ts";
import { selectExamples, subset } from "../../lib/data/subset.ts";
import { assert } from "./_helpers.ts";

/** 10 images of 2x2x1 where every pixel of image i is i/10, label i % 3. */
function toy(n = 10): Dataset {
  const images = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) images.fill(i / 10, i * 4, i * 4 + 4);
  return {
    name: "toy",
    split: "train",
    images,
    labels: Int32Array.from({ length: n }, (_, i) => i % 3),
    n,
    height: 2,
    width: 2,
    channels: 1,
    numClasses: 3,
  };
}

Deno.test("shuffledBatches covers every index once, seeded and sized", () => {
  const batches = [...shuffledBatches(103, 10, 42)];
  assert.deepEqual(batches.map((b) => b.length), [
    ...new Array(10).fill(10),
    3,
  ]);
  const all = batches.flatMap((b) => Array.from(b));
  assert.deepEqual(
    [...all].sort((a, b) => a - b),
    Array.from({ length: 103 }, (_, i) => i),
  );
  assert.notDeepEqual(all, Array.from({ length: 103 }, (_, i) => i));
  const again = [...shuffledBatches(103, 10, 42)].flatMap((b) => Array.from(b));
  assert.deepEqual(again, all);
  const other = [...shuffledBatches(103, 10, 43)].flatMap((b) => Array.from(b));
  assert.notDeepEqual(other, all);
  assert.deepEqual(
    [...shuffledBatches(103, 10, 42, { dropLast: true })].map((b) => b.length),
    new Array(10).fill(10),
  );
  assert.deepEqual([...shuffledBatches(0, 4, 1)], []);
  assert.throws(() => shuffledBatches(5, 0, 1), RangeError);
  assert.throws(() => shuffledBatches(-1, 2, 1), RangeError);
});

Deno.test("sequentialBatches are in order", () => {
  assert.deepEqual([...sequentialBatches(5, 2)].map((b) => Array.from(b)), [
    [0, 1],
    [2, 3],
    [4],
  ]);
  assert.deepEqual(
    [...sequentialBatches(5, 2, { dropLast: true })].map((b) => Array.from(b)),
    [[0, 1], [2, 3]],
  );
});

Deno.test("gatherBatch copies the chosen examples; rejects bad indices", () => {
  const ds = toy();
  const b = gatherBatch(ds, [7, 2]);
  assert.equal(b.n, 2);
  assert.deepEqual(Array.from(b.labels), [1, 2]);
  assert.deepEqual(
    Array.from(b.images),
    [0.7, 0.7, 0.7, 0.7, 0.2, 0.2, 0.2, 0.2].map(Math.fround),
  );
  b.images[0] = 99;
  assert.ok(Math.abs(ds.images[28] - 0.7) < 1e-6, "source untouched");
  assert.throws(() => gatherBatch(ds, [10]), RangeError);
  assert.throws(() => gatherBatch(ds, [-1]), RangeError);
  assert.throws(() => gatherBatch(ds, [1.5]), RangeError);
});

Deno.test("subset takes the first n or a seeded sample without replacement", () => {
  const ds = toy();
  const first = subset(ds, 4);
  assert.equal(first.n, 4);
  assert.deepEqual(Array.from(first.labels), [0, 1, 2, 0]);
  assert.equal(first.images.length, 16);
  assert.equal(first.name, "toy");
  const s1 = subset(ds, 6, { seed: 3 });
  const s2 = subset(ds, 6, { seed: 3 });
  assert.deepEqual(s1.images, s2.images);
  // each sampled image is constant i/10; recover i and check no repeats
  const ids = Array.from(
    { length: 6 },
    (_, k) => Math.round(s1.images[k * 4] * 10),
  );
  assert.equal(new Set(ids).size, 6);
  ids.forEach((i, k) => assert.equal(s1.labels[k], i % 3));
  assert.notDeepEqual(ids, [0, 1, 2, 3, 4, 5]);
  assert.equal(subset(ds, 10, { seed: 1 }).n, 10);
  assert.throws(() => subset(ds, 11), RangeError);
  const sel = selectExamples(ds, [9, 9, 0]);
  assert.deepEqual(Array.from(sel.labels), [0, 0, 0]);
  assert.equal(sel.n, 3);
});
