import { join } from "node:path";
import { parseIdx } from "../../lib/data/idx_format.ts";
import { readIdxDataset } from "../../lib/data/idx_dataset.ts";
import { resolveIdxFiles } from "../../lib/data/idx_dir.ts";
import { md5Hex } from "../../lib/data/md5.ts";
import { loadFashionMnist } from "../../lib/data/fashion_mnist.ts";
import { assert, assertDataError, fakeBytes, gzip, idxBytes } from "./_helpers.ts";

const N = 5, H = 4, W = 3;
const PIXELS = fakeBytes(N * H * W, 1);
const LABELS = [3, 0, 9, 1, 7];
const opts = { name: "toy", split: "test" as const, numClasses: 10 };

async function writePair(dir: string, gz: boolean, names = ["img", "lab"]) {
  const images = join(dir, names[0]);
  const labels = join(dir, names[1]);
  const ib = idxBytes([N, H, W], PIXELS);
  const lb = idxBytes([N], LABELS);
  await Deno.writeFile(images, gz ? gzip(ib) : ib);
  await Deno.writeFile(labels, gz ? gzip(lb) : lb);
  return { images, labels };
}

Deno.test("parseIdx decodes u8 and big-endian multi-byte types", () => {
  const u8 = parseIdx(idxBytes([2, 3], [1, 2, 3, 4, 5, 255]), "a");
  assert.deepEqual(u8.dims, [2, 3]);
  assert.deepEqual(Array.from(u8.data), [1, 2, 3, 4, 5, 255]);

  // int16 [2] = [-2, 258], int32 [1] = [16909060], float32 [1] = [1.5]
  const i16 = new Uint8Array([
    0,
    0,
    0x0b,
    1,
    0,
    0,
    0,
    2,
    0xff,
    0xfe,
    0x01,
    0x02,
  ]);
  assert.deepEqual(Array.from(parseIdx(i16, "b").data), [-2, 258]);
  const i32 = new Uint8Array([0, 0, 0x0c, 1, 0, 0, 0, 1, 1, 2, 3, 4]);
  assert.deepEqual(Array.from(parseIdx(i32, "c").data), [0x01020304]);
  const f32 = new Uint8Array([0, 0, 0x0d, 1, 0, 0, 0, 1, 0x3f, 0xc0, 0, 0]);
  assert.deepEqual(Array.from(parseIdx(f32, "d").data), [1.5]);
});

Deno.test("parseIdx faults: bad magic, unknown type, truncated, trailing", async () => {
  const good = idxBytes([N], LABELS);
  const badMagic = good.slice();
  badMagic[0] = 0x12;
  await assertDataError(() => parseIdx(badMagic, "f1"), "bad_magic", "f1");
  const badType = good.slice();
  badType[2] = 0x07;
  await assertDataError(() => parseIdx(badType, "f2"), "bad_magic", "f2");
  const e = await assertDataError(
    () => parseIdx(good.subarray(0, good.length - 1), "f3"),
    "truncated",
    "f3",
  );
  assert.equal(e.expected, `${good.length} bytes`);
  assert.equal(e.found, `${good.length - 1} bytes`);
  await assertDataError(
    () => parseIdx(good.subarray(0, 6), "f4"),
    "truncated",
    "f4",
  );
  await assertDataError(
    () => parseIdx(new Uint8Array([0, 0]), "f5"),
    "truncated",
    "f5",
  );
  const trailing = new Uint8Array(good.length + 3);
  trailing.set(good);
  await assertDataError(() => parseIdx(trailing, "f6"), "trailing_bytes", "f6");
});

Deno.test("readIdxDataset: plain and gzip files give the same scaled NHWC data", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const plainDir = join(dir, "plain"), gzDir = join(dir, "gz");
    await Deno.mkdir(plainDir);
    await Deno.mkdir(gzDir);
    // gzip detected by magic, not by name: the gz files have no .gz suffix
    const plain = await readIdxDataset(await writePair(plainDir, false), opts);
    const zipped = await readIdxDataset(await writePair(gzDir, true), opts);
    for (const ds of [plain, zipped]) {
      assert.equal(ds.n, N);
      assert.equal(ds.height, H);
      assert.equal(ds.width, W);
      assert.equal(ds.channels, 1);
      assert.equal(ds.numClasses, 10);
      assert.deepEqual(Array.from(ds.labels), LABELS);
      assert.ok(ds.labels instanceof Int32Array);
      assert.equal(ds.images.length, N * H * W);
      for (let i = 0; i < PIXELS.length; i++) {
        assert.ok(Math.abs(ds.images[i] - PIXELS[i] / 255) < 1e-7);
      }
    }
    assert.deepEqual(plain.images, zipped.images);
    // 4-D IDX gives channels
    const rgb = join(dir, "rgb");
    await Deno.writeFile(
      rgb,
      idxBytes([1, 2, 2, 3], [0, 255, 51, 0, 0, 0, 0, 0, 0, 0, 0, 102]),
    );
    const lab = join(dir, "rgblab");
    await Deno.writeFile(lab, idxBytes([1], [2]));
    const ds = await readIdxDataset({ images: rgb, labels: lab }, opts);
    assert.deepEqual([ds.n, ds.height, ds.width, ds.channels], [1, 2, 2, 3]);
    assert.deepEqual(Array.from(ds.images.subarray(0, 3)), [
      0,
      1,
      0.20000000298023224,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readIdxDataset faults name the file at fault", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = await writePair(dir, false);
    // missing file
    await assertDataError(
      () =>
        readIdxDataset(
          { images: join(dir, "nope"), labels: files.labels },
          opts,
        ),
      "missing_file",
      join(dir, "nope"),
    );
    // count mismatch: 4 labels for 5 images
    const short = join(dir, "short");
    await Deno.writeFile(short, idxBytes([N - 1], LABELS.slice(0, 4)));
    const cm = await assertDataError(
      () => readIdxDataset({ images: files.images, labels: short }, opts),
      "count_mismatch",
      short,
    );
    assert.equal(cm.expected, N);
    assert.equal(cm.found, N - 1);
    // expected count differs
    await assertDataError(
      () => readIdxDataset(files, { ...opts, expectedCount: 6 }),
      "count_mismatch",
      files.images,
    );
    // truncated plain and truncated gzip
    const raw = await Deno.readFile(files.images);
    const cut = join(dir, "cut");
    await Deno.writeFile(cut, raw.subarray(0, raw.length - 10));
    await assertDataError(
      () => readIdxDataset({ ...files, images: cut }, opts),
      "truncated",
      cut,
    );
    const gzCut = join(dir, "cut.gz");
    const z = gzip(raw);
    await Deno.writeFile(gzCut, z.subarray(0, z.length - 12));
    await assertDataError(
      () => readIdxDataset({ ...files, images: gzCut }, opts),
      "truncated",
      gzCut,
    );
    // corrupt gzip body
    const gzBad = join(dir, "bad.gz");
    const zb = z.slice();
    for (let i = 12; i < zb.length - 8; i++) zb[i] ^= 0x5a;
    await Deno.writeFile(gzBad, zb);
    await assertDataError(
      () => readIdxDataset({ ...files, images: gzBad }, opts),
      "bad_gzip",
      gzBad,
    );
    // bad magic in the labels file
    const lb = await Deno.readFile(files.labels);
    lb[1] = 1;
    const badLab = join(dir, "badlab");
    await Deno.writeFile(badLab, lb);
    await assertDataError(
      () => readIdxDataset({ ...files, labels: badLab }, opts),
      "bad_magic",
      badLab,
    );
    // images file used as labels: bad header (3 dims)
    await assertDataError(
      () => readIdxDataset({ images: files.images, labels: files.images }, opts),
      "bad_header",
      files.images,
    );
    // label out of range
    await assertDataError(
      () => readIdxDataset(files, { ...opts, numClasses: 9 }),
      "bad_label",
      files.labels,
    );
    // checksum: right passes, wrong fails
    const md5 = {
      images: md5Hex(raw),
      labels: md5Hex(await Deno.readFile(files.labels)),
    };
    assert.equal((await readIdxDataset(files, { ...opts, md5 })).n, N);
    const e = await assertDataError(
      () =>
        readIdxDataset(files, {
          ...opts,
          md5: { ...md5, labels: "0".repeat(32) },
        }),
      "checksum_mismatch",
      files.labels,
    );
    assert.equal(e.found, md5.labels);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveIdxFiles accepts plain or .gz names; Fashion-MNIST dir faults say where to put files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(
      join(dir, "t10k-images-idx3-ubyte.gz"),
      gzip(idxBytes([N, H, W], PIXELS)),
    );
    await Deno.writeFile(
      join(dir, "t10k-labels-idx1-ubyte"),
      idxBytes([N], LABELS),
    );
    const files = await resolveIdxFiles(dir, "test");
    assert.equal(files.images, join(dir, "t10k-images-idx3-ubyte.gz"));
    assert.equal(files.labels, join(dir, "t10k-labels-idx1-ubyte"));
    await assertDataError(
      () => resolveIdxFiles(dir, "train"),
      "missing_file",
      "train-images-idx3-ubyte[.gz]",
    );

    const ds = await loadFashionMnist("test", { dir, verify: false });
    assert.equal(ds.name, "fashion_mnist");
    assert.equal(ds.classNames?.[9], "Ankle boot");
    assert.deepEqual(Array.from(ds.labels), LABELS);
    // with verification, the fixture's size is not Fashion-MNIST's
    await assertDataError(
      () => loadFashionMnist("test", { dir }),
      "count_mismatch",
    );

    const e = await assertDataError(
      () => loadFashionMnist("test", { dir: join(dir, "absent") }),
      "not_available",
      join(dir, "absent"),
    );
    assert.match(e.message, /dataset-fashion-mnist/);
    assert.match(e.message, /\/usr\/share\/datasets\/fashion-mnist/);
    assert.match(e.message, /t10k-images-idx3-ubyte/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
