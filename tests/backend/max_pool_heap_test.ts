import assert from "node:assert/strict";
import { maxPoolBackward, maxPoolForward, type PoolGeometry } from "../../lib/backend/native/max_pool_heap.ts";
import { mulberry32 } from "../../lib/data/rng.ts";

/** Window (r, s) of output (i, j): the input pixel, or undefined in the padding. */
function reference(x: Float32Array, g: PoolGeometry, dy: Float32Array) {
  const y = new Float32Array(g.n * g.oh * g.ow * g.c), dx = new Float32Array(x.length);
  for (let b = 0; b < g.n; b++) {
    for (let i = 0; i < g.oh; i++) {
      for (let j = 0; j < g.ow; j++) {
        for (let k = 0; k < g.c; k++) {
          let best = -Infinity, arg = -1;
          for (let r = 0; r < g.fh; r++) {
            for (let s = 0; s < g.fw; s++) {
              const hh = i * g.sh - g.pt + r, ww = j * g.sw - g.pl + s;
              if (hh < 0 || hh >= g.h || ww < 0 || ww >= g.w) continue;
              const p = ((b * g.h + hh) * g.w + ww) * g.c + k;
              if (arg < 0 || x[p] > best) [best, arg] = [x[p], p];
            }
          }
          const o = ((b * g.oh + i) * g.ow + j) * g.c + k;
          y[o] = best;
          dx[arg] += dy[o];
        }
      }
    }
  }
  return { y, dx };
}

Deno.test("max pooling loops equal a direct reference: ties to the first maximum, padding, overlapping windows", () => {
  const rng = mulberry32(7);
  const int = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
  for (let trial = 0; trial < 40; trial++) {
    const [n, h, w, c, fh, fw, sh, sw] = [
      int(1, 3),
      int(2, 9),
      int(2, 9),
      int(1, 12),
      int(1, 3),
      int(1, 3),
      int(1, 3),
      int(1, 3),
    ];
    const same = trial % 2 === 0;
    const oh = same ? Math.ceil(h / sh) : Math.floor((h - fh) / sh) + 1;
    const ow = same ? Math.ceil(w / sw) : Math.floor((w - fw) / sw) + 1;
    if (oh <= 0 || ow <= 0) continue;
    const pt = same ? Math.max(0, ((oh - 1) * sh + fh - h) >> 1) : 0;
    const pl = same ? Math.max(0, ((ow - 1) * sw + fw - w) >> 1) : 0;
    const g: PoolGeometry = { n, h, w, c, oh, ow, fh, fw, sh, sw, pt, pl };
    // Quarter steps, negatives included: many windows hold ties.
    const x = new Float32Array(n * h * w * c).map(() => Math.round((rng() * 2 - 1) * 4) / 4);
    const dy = new Float32Array(n * oh * ow * c).map(() => rng());
    const want = reference(x, g, dy);
    // In one heap-like array at offsets, as the kernels use them.
    const heap = new Float32Array(8 + x.length + want.y.length + dy.length + x.length);
    const [xo, yo, dyo, dxo] = [
      8,
      8 + x.length,
      8 + x.length + want.y.length,
      8 + x.length + want.y.length + dy.length,
    ];
    heap.set(x, xo);
    heap.set(dy, dyo);
    heap.fill(7, dxo); // the backward pass writes every element of dx
    const idx = new Int32Array(3 + want.y.length);
    maxPoolForward(heap, xo, heap, yo, idx, 3, g);
    maxPoolBackward(heap, dyo, heap, dxo, idx, 3, g);
    const where = JSON.stringify(g);
    assert.deepEqual(heap.subarray(yo, yo + want.y.length), want.y, where);
    assert.deepEqual(heap.subarray(dxo, dxo + x.length), want.dx, where);
  }
});
