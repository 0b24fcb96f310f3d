import assert from "node:assert/strict";
import {
  augmentBatch,
  augmenter,
  channelStats,
  CIFAR10_STATS,
  type Dataset,
  mulberry32,
  normalize,
  resizeDataset,
  resizeImage,
} from "../../lib/data/mod.ts";

/** n images of h×w×c whose value encodes (image, y, x, channel). */
function coded(n: number, h: number, w: number, c: number): Float32Array {
  const a = new Float32Array(n * h * w * c);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < c; ch++) a[((i * h + y) * w + x) * c + ch] = 1 + i * 1000 + y * 100 + x * 10 + ch;
      }
    }
  }
  return a;
}

Deno.test("augmentBatch: every output is a shifted (and maybe mirrored) copy of its input with fill in the padding", () => {
  const [n, h, w, c, pad] = [64, 8, 8, 2, 4];
  const src = coded(n, h, w, c);
  const out = augmentBatch(src, n, h, w, c, { cropPadding: pad, flip: true, fill: -1 }, mulberry32(3));
  const shifts = new Set<string>();
  let flips = 0;
  for (let i = 0; i < n; i++) {
    // find the (dy, dx, flip) that explains image i
    let found: string | undefined;
    for (let dy = -pad; dy <= pad && !found; dy++) {
      for (let dx = -pad; dx <= pad && !found; dx++) {
        for (const flip of [false, true]) {
          let ok = true;
          for (let y = 0; y < h && ok; y++) {
            for (let x = 0; x < w && ok; x++) {
              const sy = y + dy, sx = (flip ? w - 1 - x : x) + dx;
              for (let ch = 0; ch < c; ch++) {
                const want = sy < 0 || sy >= h || sx < 0 || sx >= w ? -1 : src[((i * h + sy) * w + sx) * c + ch];
                if (out[((i * h + y) * w + x) * c + ch] !== want) ok = false;
              }
            }
          }
          if (ok) {
            found = `${dy},${dx}`;
            if (flip) flips++;
            break;
          }
        }
      }
    }
    assert.ok(found !== undefined, `image ${i} is not a crop/flip of its input`);
    shifts.add(found);
  }
  // 64 draws over 81 offsets and two flip states: both vary
  assert.ok(shifts.size > 20, `only ${shifts.size} distinct offsets`);
  assert.ok(flips > 10 && flips < 54, `${flips} flips of 64`);
});

Deno.test("augmentBatch is seeded, leaves its input alone, and is the identity without crop and flip", () => {
  const src = coded(4, 6, 6, 3);
  const copy = src.slice();
  const a = augmentBatch(src, 4, 6, 6, 3, { cropPadding: 4, flip: true }, mulberry32(7));
  const b = augmentBatch(src, 4, 6, 6, 3, { cropPadding: 4, flip: true }, mulberry32(7));
  const d = augmentBatch(src, 4, 6, 6, 3, { cropPadding: 4, flip: true }, mulberry32(8));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, d);
  assert.deepEqual(src, copy);
  assert.deepEqual(augmentBatch(src, 4, 6, 6, 3, { cropPadding: 0, flip: false }, mulberry32(1)), src);
  // an augmenter draws afresh for each batch, reproducibly
  const f = augmenter({ cropPadding: 2, flip: true }, 5), g = augmenter({ cropPadding: 2, flip: true }, 5);
  const f1 = f(src, 4, 6, 6, 3), f2 = f(src, 4, 6, 6, 3);
  assert.notDeepEqual(f1, f2);
  assert.deepEqual(g(src, 4, 6, 6, 3), f1);
  assert.throws(() => augmentBatch(src, 5, 6, 6, 3, { cropPadding: 4, flip: true }, mulberry32(1)), /expected 5×6×6×3/);
  assert.throws(() => augmentBatch(src, 4, 6, 6, 3, { cropPadding: -1, flip: true }, mulberry32(1)), /cropPadding/);
});

Deno.test("channelStats and normalize: per-channel (x − mean) / std", () => {
  const x = new Float32Array([0, 10, 1, 20, 2, 30, 3, 40]); // 4 pixels, 2 channels
  const s = channelStats(x, 2);
  assert.deepEqual(s.mean, [1.5, 25]);
  assert.ok(Math.abs(s.std[0] - Math.sqrt(1.25)) < 1e-9 && Math.abs(s.std[1] - Math.sqrt(125)) < 1e-9);
  const z = normalize(x, s);
  const back = channelStats(z, 2);
  back.mean.forEach((m) => assert.ok(Math.abs(m) < 1e-6));
  back.std.forEach((v) => assert.ok(Math.abs(v - 1) < 1e-6));
  const y = normalize(new Float32Array([0.4914, 0.4822, 0.4465]), CIFAR10_STATS);
  y.forEach((v) => assert.ok(Math.abs(v) < 1e-6));
  assert.throws(() => normalize(x, { mean: [0, 0], std: [1, 0] }), /std of channel 1/);
  assert.throws(() => normalize(new Float32Array(3), { mean: [0, 0], std: [1, 1] }), /do not split/);
  assert.throws(() => channelStats(new Float32Array(0), 1), /channels/);
});

Deno.test("resizeImage: PyTorch bilinear (align_corners=False) values", () => {
  // torch.nn.functional.interpolate(torch.tensor([[[[0., 1.], [2., 3.]]]]), size=(4, 4), mode="bilinear")
  const up = resizeImage(new Float32Array([0, 1, 2, 3]), 2, 2, 1, 4, 4);
  const want = [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3];
  up.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `at ${i}: ${v} vs ${want[i]}`));
  // downsampling by 2 averages 2×2 blocks; a constant stays constant; channels stay apart
  const d = resizeImage(new Float32Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]), 4, 4, 1, 2, 2);
  assert.deepEqual(Array.from(d), [2.5, 4.5, 10.5, 12.5]);
  const two = resizeImage(new Float32Array([1, 5, 1, 5, 1, 5, 1, 5]), 2, 2, 2, 3, 5);
  for (let i = 0; i < two.length; i++) assert.equal(two[i], i % 2 === 0 ? 1 : 5);
  assert.throws(() => resizeImage(new Float32Array(3), 2, 2, 1, 4, 4), /expected 2×2×1/);
});

Deno.test("resizeDataset: 28×28 to 32×32 keeps labels and range, returns the input when the size matches", () => {
  const images = new Float32Array(2 * 28 * 28).map((_, i) => (i % 97) / 96);
  const ds: Dataset = {
    name: "t",
    split: "train",
    images,
    labels: new Int32Array([3, 4]),
    n: 2,
    height: 28,
    width: 28,
    channels: 1,
    numClasses: 10,
  };
  const r = resizeDataset(ds, 32);
  assert.equal(r.images.length, 2 * 32 * 32);
  assert.deepEqual([r.height, r.width, r.channels, r.n], [32, 32, 1, 2]);
  assert.deepEqual(Array.from(r.labels), [3, 4]);
  assert.ok(r.images.every((v) => v >= 0 && v <= 1));
  assert.equal(resizeDataset(ds, 28), ds);
  assert.throws(() => resizeDataset(ds, 0), /positive integer/);
});
