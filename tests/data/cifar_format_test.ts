import { join } from "node:path";
import { readCifarDataset } from "../../lib/data/cifar_format.ts";
import { assert, assertDataError, cifarBytes, cifarRecords } from "./_helpers.ts";

Deno.test("CIFAR-10 records decode to NHWC in [0,1] with labels, across files in order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = cifarRecords(3, 1, (i) => i + 4);
    const b = cifarRecords(2, 2, (i) => 9 - i);
    await Deno.writeFile(join(dir, "a.bin"), cifarBytes(a));
    await Deno.writeFile(join(dir, "b.bin"), cifarBytes(b));
    const ds = await readCifarDataset(
      [join(dir, "a.bin"), join(dir, "b.bin")],
      {
        variant: "cifar10",
        split: "train",
        expectedCount: 5,
      },
    );
    assert.deepEqual([ds.n, ds.height, ds.width, ds.channels, ds.numClasses], [
      5,
      32,
      32,
      3,
      10,
    ]);
    assert.deepEqual(Array.from(ds.labels), [4, 5, 6, 9, 8]);
    const all = [...a, ...b];
    // pixel (y, x, c) of image i is CHW byte c*1024 + y*32 + x
    for (
      const [i, y, x, c] of [[0, 0, 0, 0], [1, 5, 7, 1], [3, 31, 31, 2], [
        4,
        16,
        3,
        0,
      ]]
    ) {
      const got = ds.images[((i * 32 + y) * 32 + x) * 3 + c];
      const want = all[i].pixels[c * 1024 + y * 32 + x] / 255;
      assert.ok(
        Math.abs(got - want) < 1e-7,
        `pixel ${[i, y, x, c]}: ${got} vs ${want}`,
      );
    }
    let min = 1, max = 0;
    for (const v of ds.images) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.ok(min >= 0 && max <= 1 && max > 0.9, `range ${min}..${max}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CIFAR-100 records: fine by default, coarse on request", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const recs = cifarRecords(4, 3, (i) => 97 + i % 3, (i) => 19 - i);
    const f = join(dir, "train.bin");
    await Deno.writeFile(f, cifarBytes(recs, true));
    const fine = await readCifarDataset([f], {
      variant: "cifar100",
      split: "train",
    });
    assert.deepEqual(Array.from(fine.labels), [97, 98, 99, 97]);
    assert.equal(fine.numClasses, 100);
    const coarse = await readCifarDataset([f], {
      variant: "cifar100",
      split: "train",
      labels: "coarse",
    });
    assert.deepEqual(Array.from(coarse.labels), [19, 18, 17, 16]);
    assert.equal(coarse.numClasses, 20);
    // the image follows two label bytes
    assert.ok(Math.abs(fine.images[1] - recs[0].pixels[1024] / 255) < 1e-7);
    // CIFAR-100 bytes read as CIFAR-10 have the wrong record size
    await assertDataError(
      () => readCifarDataset([f], { variant: "cifar10", split: "train" }),
      "record_size",
      f,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CIFAR faults: record size, empty, missing, bad label, count mismatch", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = cifarBytes(cifarRecords(2, 4, () => 1));
    const g = join(dir, "good.bin");
    await Deno.writeFile(g, good);
    const odd = join(dir, "odd.bin");
    await Deno.writeFile(odd, good.subarray(0, good.length - 100));
    const e = await assertDataError(
      () => readCifarDataset([g, odd], { variant: "cifar10", split: "train" }),
      "record_size",
      odd,
    );
    assert.match(String(e.found), /6046 bytes \(1 records \+ 2973 bytes\)/);
    const empty = join(dir, "empty.bin");
    await Deno.writeFile(empty, new Uint8Array(0));
    await assertDataError(
      () => readCifarDataset([empty], { variant: "cifar10", split: "test" }),
      "truncated",
      empty,
    );
    await assertDataError(
      () =>
        readCifarDataset([g, join(dir, "absent.bin")], {
          variant: "cifar10",
          split: "test",
        }),
      "missing_file",
      "absent.bin",
    );
    const bad = cifarBytes(cifarRecords(2, 4, (i) => (i === 1 ? 10 : 0)));
    const b = join(dir, "badlabel.bin");
    await Deno.writeFile(b, bad);
    const bl = await assertDataError(
      () => readCifarDataset([b], { variant: "cifar10", split: "test" }),
      "bad_label",
      b,
    );
    assert.equal(bl.found, 10);
    const cm = await assertDataError(
      () =>
        readCifarDataset([g], {
          variant: "cifar10",
          split: "test",
          expectedCount: 10000,
        }),
      "count_mismatch",
      g,
    );
    assert.equal(cm.found, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
