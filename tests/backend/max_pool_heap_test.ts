import assert from "node:assert/strict";
import {
  maxPoolBackward,
  maxPoolForward,
  type MaxPoolSimdExports,
  type PoolGeometry,
} from "../../lib/backend/native/max_pool_heap.ts";
import { MAX_POOL_SIMD_WASM } from "../../lib/backend/native/max_pool_simd_wasm.ts";
import { wasmBytes } from "../../lib/backend/native/wasm_simd.ts";
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

/** Random geometries (`same` and `valid`, overlapping windows) with at least `minC` channels. */
function* geometries(seed: number, minC: number): Generator<PoolGeometry> {
  const rng = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
  for (let trial = 0; trial < 40; trial++) {
    const [n, h, w, c, fh, fw, sh, sw] = [
      int(1, 3),
      int(2, 9),
      int(2, 9),
      int(minC, 12),
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
    yield { n, h, w, c, oh, ow, fh, fw, sh, sw, pt, pl };
  }
}

/** Quarter steps, negatives included (many windows hold ties), and the output gradient. */
function inputs(g: PoolGeometry, rng: () => number) {
  const x = new Float32Array(g.n * g.h * g.w * g.c).map(() => Math.round((rng() * 2 - 1) * 4) / 4);
  const dy = new Float32Array(g.n * g.oh * g.ow * g.c).map(() => rng());
  return { x, dy };
}

Deno.test("max pooling loops equal a direct reference: ties to the first maximum, padding, overlapping windows", () => {
  const rng = mulberry32(11);
  let tried = 0;
  for (const g of geometries(7, 1)) {
    const { x, dy } = inputs(g, rng);
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
    tried++;
  }
  assert.ok(tried >= 30, `only ${tried} geometries`);
});

Deno.test("the SIMD max pooling (max_pool_simd.wat) equals the reference: ties, padding, channel tails, NaN", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const k = new WebAssembly.Instance(new WebAssembly.Module(wasmBytes(MAX_POOL_SIMD_WASM)), { env: { memory } })
    .exports as unknown as MaxPoolSimdExports;
  const rng = mulberry32(5);
  let tried = 0;
  for (const g of geometries(9, 4)) {
    const { x, dy } = inputs(g, rng);
    if (tried % 5 === 0) x[Math.floor(rng() * x.length)] = NaN; // as the loops: a NaN never displaces a maximum
    const nin = x.length, nout = dy.length;
    // Byte offsets at odd multiples of 4: the kernel must not rely on 16-byte alignment.
    const [xo, yo, io, dyo, dxo] = [
      4,
      4 + 4 * nin,
      8 + 4 * (nin + nout),
      12 + 4 * (nin + 2 * nout),
      16 + 4 * (nin + 3 * nout),
    ];
    const f32 = new Float32Array(memory.buffer), i32 = new Int32Array(memory.buffer);
    f32.fill(7);
    f32.set(x, xo / 4);
    f32.set(dy, dyo / 4);
    k.maxpool(xo, yo, io, g.n, g.h, g.w, g.c, g.oh, g.ow, g.fh, g.fw, g.sh, g.sw, g.pt, g.pl);
    k.maxpool_grad(dyo, dxo, io, nin, nout);
    // The loops on the same input are the reference here (NaN included); the direct reference where NaN-free.
    const y = new Float32Array(nout), idx = new Int32Array(nout), dx = new Float32Array(nin);
    maxPoolForward(x, 0, y, 0, idx, 0, g);
    maxPoolBackward(dy, 0, dx, 0, idx, 0, g);
    const where = JSON.stringify(g);
    assert.deepEqual(f32.slice(yo / 4, yo / 4 + nout), y, where);
    assert.deepEqual(i32.slice(io / 4, io / 4 + nout), idx, where);
    assert.deepEqual(f32.slice(dxo / 4, dxo / 4 + nin), dx, where);
    if (!x.some(Number.isNaN)) assert.deepEqual(dx, reference(x, g, dy).dx, where);
    assert.equal(f32[dxo / 4 + nin], 7, `${where}: wrote past dx`);
    tried++;
  }
  assert.ok(tried >= 30, `only ${tried} geometries`);
});
