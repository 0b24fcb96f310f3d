import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { TAG } from "../../lib/backend/native/dnnl_ffi.ts";
import type { Dnnl } from "../../lib/backend/native/dnnl.ts";
import { runtime } from "../../lib/backend/native/runtime.ts";
import { NativeBufferError, offsetSized, sized } from "../../lib/backend/native/sized_ptr.ts";
import { convBackwardWeights } from "../../lib/backend/native/conv2d_backprop.ts";
import { convGeometry, isStridedPointwise } from "../../lib/backend/native/conv_geometry.ts";
import { mulberry32, randomArray, readyBoth, relativeError } from "./_compare.ts";
import { nativeTest } from "../_parts.ts";

await readyBoth();

/** A float32 array with `pad` canary values after its `n` values, and a sized pointer to the first `n`. */
function guarded(n: number, pad = 64): { a: Float32Array; ptr: Deno.PointerValue; canariesIntact: () => boolean } {
  const a = new Float32Array(n + pad).fill(12345.5);
  return {
    a,
    ptr: sized(Deno.UnsafePointer.of(a), 4 * n),
    canariesIntact: () => a.subarray(n).every((v) => v === 12345.5),
  };
}

nativeTest(
  "strided pointwise weight gradients: equal the direct sums for 1–9 channels, even and odd sizes, no write past any buffer",
  () => {
    // oneDNN 2.6's jit_1x1:avx2 wrote past its own scratchpad for these (fewer than 8 input channels, stride 2):
    // under DNNL_MAX_CPU_ISA=AVX2 this test aborted the process with heap corruption before the gather.
    const d = runtime.dnnl as Dnnl;
    const rng = mulberry32(7);
    let gathered = 0;
    for (const c of [1, 3, 4, 5, 7, 8, 9]) {
      for (const [n, h, s, co] of [[6, 16, 2, 8], [3, 15, 2, 8], [2, 12, 3, 4], [4, 7, 2, 16]]) {
        const g = convGeometry(tf.backend_util.computeConv2DInfo([n, h, h, c], [1, 1, c, co], s, 1, "same"));
        if (isStridedPointwise(g)) gathered++;
        const x = guarded(n * h * h * c), dy = guarded(n * g.oh * g.ow * co), dw = guarded(c * co);
        x.a.set(randomArray(rng, n * h * h * c));
        dy.a.set(randomArray(rng, n * g.oh * g.ow * co));
        for (let rep = 0; rep < 2; rep++) convBackwardWeights(d, g, [x.ptr, dy.ptr, dw.ptr]);
        const want = new Float32Array(c * co);
        for (let b = 0; b < n; b++) {
          for (let y = 0; y < g.oh; y++) {
            for (let xx = 0; xx < g.ow; xx++) {
              for (let ch = 0; ch < c; ch++) {
                const xv = x.a[((b * h + y * s) * h + xx * s) * c + ch];
                for (let o = 0; o < co; o++) want[ch * co + o] += xv * dy.a[((b * g.oh + y) * g.ow + xx) * co + o];
              }
            }
          }
        }
        const what = `c=${c} n=${n} h=${h} stride ${s}`;
        assert.ok(relativeError(dw.a.subarray(0, c * co), want) < 1e-5, what);
        assert.ok(x.canariesIntact() && dy.canariesIntact() && dw.canariesIntact(), `${what}: a buffer was overrun`);
      }
    }
    assert.ok(gathered >= 14, `the gathered path ran (${gathered} problems)`);
  },
);

nativeTest(
  "a buffer smaller than its operand, or of unknown size, is an error naming the plan, and nothing runs",
  () => {
    const d = runtime.dnnl as Dnnl;
    const md = d.mdTag([64], TAG.a);
    const plan = d.reorderPlan("test_copy_64", md, md, false);
    const src = guarded(64), dst = guarded(63);
    const runs = plan.runs;
    assert.throws(
      () => plan.run([src.ptr, dst.ptr]),
      (e) =>
        e instanceof NativeBufferError &&
        /reorder\|test_copy_64\|set: operand 1 is a buffer of 252 bytes where oneDNN's memory descriptor needs 256/
          .test(e.message),
    );
    assert.throws(() => plan.run([src.ptr, Deno.UnsafePointer.of(dst.a)]), /operand 1 is a pointer of unknown size/);
    assert.equal(plan.runs, runs, "the plan did not run");
    assert.ok(dst.canariesIntact());
    const big = guarded(64);
    plan.run([src.ptr, big.ptr]);
    assert.deepEqual(big.a.subarray(0, 64), src.a.subarray(0, 64));
    // An offset pointer keeps what remains of its buffer; an offset past the end is refused.
    const p = offsetSized(big.ptr, 8, "window");
    assert.throws(() => plan.run([src.ptr, p]), /operand 1 is a buffer of 248 bytes/);
    assert.throws(
      () => offsetSized(big.ptr, 300, "window"),
      /window: offset 300 lies past the end of its 256-byte buffer/,
    );
  },
);
