import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { registerNativeKernels, setNativeEnabled } from "../../lib/backend/mod.ts";
import { NATIVE_KERNEL_NAMES } from "../../lib/backend/native/register.ts";
import { runtime, THRESHOLDS } from "../../lib/backend/native/runtime.ts";
import { onednn } from "../_parts.ts";
import { maxPoolSimd, setMaxPoolSimd } from "../../lib/backend/native/max_pool_heap.ts";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { mulberry32, onBackend, randomArray, readyBoth, relativeError, type Rng } from "./_compare.ts";

const TOL = 1e-4;
await readyBoth();
const report = registerNativeKernels();
// Skipped only where oneDNN is missing; where libdnnl2 is installed it must load.
const ignore = !onednn.available;
if (ignore) console.warn(`SKIPPING the oneDNN kernel tests: ${onednn.reason}`);
else if (!report.ok) throw new Error(`libdnnl2 is installed but the native kernels did not load: ${report.reason}`);
else console.log(`native kernels: ${report.reason}`);

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)];
}
function int(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}
function rand(rng: Rng, shape: number[]): { shape: number[]; data: Float32Array } {
  return { shape, data: randomArray(rng, shape.reduce((a, b) => a * b, 1)) };
}
function t(v: { shape: number[]; data: Float32Array }): tf.Tensor {
  return tf.tensor(v.data, v.shape);
}

/** Runs `body` with every problem sent to oneDNN (no size threshold), restoring the thresholds after. */
async function everyProblemNative(body: () => Promise<void>): Promise<void> {
  const saved = { ...THRESHOLDS };
  THRESHOLDS.minMacs = 0;
  try {
    await body();
  } finally {
    Object.assign(THRESHOLDS, saved);
  }
}

/**
 * Compares `fn` on wasm (native kernels) with cpu, output by output; unless
 * `nativeUsed` is false, also checks that oneDNN ran at least once.
 */
async function compare(what: string, fn: () => tf.Tensor[], nativeUsed = true): Promise<void> {
  const before = runtime.dnnl?.runCount ?? 0;
  const a = await onBackend("wasm", fn);
  if (nativeUsed) assert.ok((runtime.dnnl?.runCount ?? 0) > before, `${what}: oneDNN was not used`);
  const b = await onBackend("cpu", fn);
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    const err = relativeError(a[i], b[i]);
    assert.ok(err <= TOL, `${what} (output ${i}): relative error ${err}`);
  }
}

type Pad = "same" | "valid" | [[0, 0], [number, number], [number, number], [0, 0]];
function randomPad(rng: Rng, i: number): Pad {
  if (i % 3 === 0) return "same";
  if (i % 3 === 1) return "valid";
  return [[0, 0], [int(rng, 0, 2), int(rng, 0, 2)], [int(rng, 0, 2), int(rng, 0, 2)], [0, 0]];
}

interface ConvCase {
  x: number[];
  f: number[];
  stride: number;
  dilation: number;
  pad: Pad;
}

function convCase(rng: Rng, i: number, allowDilation: boolean): ConvCase | undefined {
  const stride = i % 2 === 0 ? 1 : 2;
  const dilation = allowDilation && stride === 1 && rng() < 0.4 ? 2 : 1;
  const c: ConvCase = {
    x: [i < 3 ? 1 : int(rng, 2, 5), int(rng, 5, 12), int(rng, 5, 12), int(rng, 1, 9)],
    f: [int(rng, 1, 3), int(rng, 1, 3), 0, int(rng, 1, 9)],
    stride,
    dilation,
    pad: randomPad(rng, i),
  };
  c.f[2] = c.x[3];
  const info = tf.backend_util.computeConv2DInfo(
    c.x as [number, number, number, number],
    c.f as [number, number, number, number],
    c.stride,
    c.dilation,
    c.pad,
  );
  return info.outHeight > 0 && info.outWidth > 0 ? c : undefined;
}

Deno.test({
  name: "native kernels are registered over the wasm ones and can be switched off",
  ignore,
  fn: () => {
    for (const name of NATIVE_KERNEL_NAMES) assert.ok(tf.getKernel(name, "wasm") !== undefined, name);
    assert.equal(runtime.enabled, true);
    setNativeEnabled(false);
    assert.equal(runtime.enabled, false);
    setNativeEnabled(true);
    assert.match(
      report.reason,
      /oneDNN 2\.\d+\.\d+ \(.+, \d+ (fixed )?threads?, (GOMP_SPINCOUNT|OMP_WAIT_POLICY)=.+\)/,
    );
  },
});

Deno.test({
  name: "Conv2D and its two backprops match cpu on random shapes (strides 1/2, same/valid/explicit)",
  ignore,
  fn: () =>
    everyProblemNative(async () => {
      const rng = mulberry32(101);
      let n = 0;
      for (let i = 0; n < 30; i++) {
        const c = convCase(rng, i, true);
        if (c === undefined) continue;
        n++;
        const x = rand(rng, c.x), f = rand(rng, c.f);
        const what = `conv ${JSON.stringify(c)}`;
        await compare(
          `${what} forward`,
          () => [tf.conv2d(t(x) as tf.Tensor4D, t(f) as tf.Tensor4D, c.stride, c.pad, "NHWC", c.dilation)],
        );
        if (c.dilation !== 1) continue; // tfjs has no gradient for dilated conv2d
        const y = tf.tidy(() => tf.conv2d(t(x) as tf.Tensor4D, t(f) as tf.Tensor4D, c.stride, c.pad));
        const dy = rand(rng, y.shape);
        y.dispose();
        const attrs = { strides: [c.stride, c.stride], pad: c.pad, dataFormat: "NHWC" };
        await compare(`${what} backprop input`, () => [
          tf.engine().runKernel("Conv2DBackpropInput", { dy: t(dy), filter: t(f) }, {
            ...attrs,
            inputShape: c.x,
          }) as tf.Tensor,
        ]);
        await compare(`${what} backprop filter`, () => [
          tf.engine().runKernel("Conv2DBackpropFilter", { x: t(x), dy: t(dy) }, {
            ...attrs,
            filterShape: c.f,
          }) as tf.Tensor,
        ]);
      }
    }),
});

Deno.test({
  name: "FusedConv2D with bias and each fusable activation matches cpu",
  ignore,
  fn: () =>
    everyProblemNative(async () => {
      const rng = mulberry32(102);
      const acts = ["linear", "relu", "relu6", "leakyrelu", "elu", "sigmoid", "prelu"] as const;
      let i = 0;
      for (const activation of acts) {
        for (const withBias of [true, false]) {
          let c: ConvCase | undefined;
          while ((c = convCase(rng, i++, false)) === undefined);
          const x = rand(rng, c.x), f = rand(rng, c.f), b = rand(rng, [c.f[3]]), alpha = rand(rng, [c.f[3]]);
          await compare(`fused conv ${activation} bias=${withBias} ${JSON.stringify(c)}`, () => [
            tf.fused.conv2d({
              x: t(x) as tf.Tensor4D,
              filter: t(f) as tf.Tensor4D,
              strides: c.stride,
              pad: c.pad,
              bias: withBias ? t(b) : undefined,
              activation,
              leakyreluAlpha: 0.15,
              preluActivationWeights: activation === "prelu" ? t(alpha) : undefined,
            }),
          ], activation !== "prelu");
        }
      }
    }),
});

Deno.test({
  name: "BatchMatMul and _FusedMatMul match cpu (transposes, batch broadcast, ranks 2-4, bias, activations)",
  ignore,
  fn: () =>
    everyProblemNative(async () => {
      const rng = mulberry32(103);
      for (let i = 0; i < 32; i++) {
        const m = int(rng, 1, 17), k = int(rng, 1, 17), n = int(rng, 1, 17);
        const ta = rng() < 0.5, tb = rng() < 0.5;
        const outer = pick(rng, [[], [3], [1, 2], [2, 3]] as number[][]);
        let oa = outer, ob = outer;
        const broadcast = outer.length === 1 ? pick(rng, ["none", "a", "b"] as const) : "none";
        if (broadcast === "a") oa = [1];
        if (broadcast === "b") ob = [1];
        const a = rand(rng, [...oa, ...(ta ? [k, m] : [m, k])]);
        const b = rand(rng, [...ob, ...(tb ? [n, k] : [k, n])]);
        const what = `matmul a[${a.shape}] b[${b.shape}] ta=${ta} tb=${tb}`;
        await compare(what, () => [tf.matMul(t(a), t(b), ta, tb)]);
        const bias = rand(rng, [n]);
        const activation = pick(rng, ["linear", "relu", "elu", "relu6", "sigmoid", "leakyrelu"] as const);
        await compare(`fused ${activation} ${what}`, () => [
          tf.fused.matMul({
            a: t(a),
            b: t(b),
            transposeA: ta,
            transposeB: tb,
            bias: t(bias),
            activation,
            leakyreluAlpha: 0.3,
          }),
        ]);
      }
    }),
});

Deno.test({
  name: "Sum and Mean match cpu over leading and other axes, with and without keepDims",
  ignore,
  fn: () =>
    everyProblemNative(async () => {
      const rng = mulberry32(104);
      const x = rand(rng, [4, 5, 6, 7]);
      const axes: (number | number[])[] = [[0, 1, 2], 0, [0, 1], [1, 0], [0, 1, 2, 3], [1, 2], 3, [0, 3]];
      for (const axis of axes) {
        for (const keepDims of [false, true]) {
          const ax = (Array.isArray(axis) ? axis : [axis]).slice().sort();
          const leading = ax.every((a, i) => a === i); // other reductions stay on the wasm kernels
          await compare(
            `sum/mean axis ${JSON.stringify(axis)} keepDims=${keepDims}`,
            () => [tf.sum(t(x), axis, keepDims), tf.mean(t(x), axis, keepDims)],
            leading,
          );
        }
      }
      const ints = tf.tensor([1, 2, 3, 4, 5, 6], [3, 2], "int32");
      const s = tf.sum(ints, 0);
      assert.deepEqual(Array.from(s.dataSync()), [9, 12]);
      assert.equal(s.dtype, "int32");
      tf.dispose([ints, s]);
    }),
});

Deno.test({
  name: "FusedBatchNorm matches cpu (4-D and 2-D, with and without scale/offset)",
  ignore,
  fn: () =>
    everyProblemNative(async () => {
      const rng = mulberry32(105);
      for (const shape of [[3, 5, 6, 32], [1, 4, 4, 16], [9, 48], [3, 5, 6, 7]]) {
        const c = shape[shape.length - 1];
        const x = rand(rng, shape), mean = rand(rng, [c]), offset = rand(rng, [c]), scale = rand(rng, [c]);
        const variance = { shape: [c], data: randomArray(rng, c).map((v) => v + 1.5) };
        for (const [withScale, withOffset] of [[true, true], [false, true], [true, false], [false, false]]) {
          await compare(
            `batchNorm [${shape}] scale=${withScale} offset=${withOffset}`,
            () => [
              tf.batchNorm(
                t(x),
                t(mean),
                t(variance),
                withOffset ? t(offset) : undefined,
                withScale ? t(scale) : undefined,
                1e-3,
              ),
            ],
            c >= 16, // fewer channels stay on the wasm kernel
          );
        }
      }
    }),
});

Deno.test({
  name: "the FusedBatchNorm gradient (x, mean, variance, scale, offset) matches cpu",
  ignore,
  fn: async () => {
    const rng = mulberry32(111);
    for (const shape of [[4, 5, 6, 32], [2, 3, 3, 6], [16, 1], [3, 4, 4, 1]]) {
      const c = shape[shape.length - 1];
      const x = rand(rng, shape), mean = rand(rng, [c]), offset = rand(rng, [c]), scale = rand(rng, [c]);
      const variance = { shape: [c], data: randomArray(rng, c).map((v) => v + 1.5) };
      const w = rand(rng, shape);
      await compare(`batchNorm gradient [${shape}]`, () => {
        const f = (a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, o: tf.Tensor, s: tf.Tensor) =>
          tf.batchNorm(a, m, v, o, s, 1e-3).mul(t(w)).sum();
        return tf.grads(f)([t(x), t(mean), t(variance), t(offset), t(scale)]);
      });
    }
  },
});

Deno.test({
  name: "activations (ReLU, LeakyReLU, ReLU6, tanh, sigmoid) and their gradients match cpu",
  ignore,
  fn: () =>
    everyProblemNative(async () => {
      const rng = mulberry32(112);
      for (const shape of [[2, 5, 6, 7], [300], [4, 33]]) {
        // Quarter steps: some inputs are exactly 0 (and 6), where the gradients' conventions matter.
        const x = { shape, data: randomArray(rng, shape.reduce((a, b) => a * b)).map((v) => Math.round(v * 32) / 4) };
        const w = rand(rng, shape);
        const acts: [string, (a: tf.Tensor) => tf.Tensor][] = [
          ["relu", (a) => tf.relu(a)],
          ["leakyRelu", (a) => tf.leakyRelu(a, 0.2)],
          ["relu6", (a) => tf.relu6(a)],
          ["tanh", (a) => tf.tanh(a)],
          ["sigmoid", (a) => tf.sigmoid(a)],
        ];
        for (const [name, f] of acts) {
          await compare(`${name} [${shape}] forward and gradient`, () => [
            f(t(x)),
            tf.grad((a: tf.Tensor) => f(a).mul(t(w)).sum())(t(x)),
          ], name !== "relu6"); // relu6's gradient and relu's forward stay on the wasm kernels
        }
      }
    }),
});

Deno.test({
  name: "ResizeNearestNeighbor matches cpu, and its gradient the block sums (integer upscaling)",
  ignore,
  fn: () =>
    everyProblemNative(async () => {
      const rng = mulberry32(113);
      const cases: [number[], [number, number], boolean, boolean, boolean][] = [
        [[2, 3, 4, 5], [6, 8], false, false, true],
        [[1, 5, 5, 3], [15, 10], false, false, true],
        [[3, 4, 4, 16], [8, 8], false, false, true],
        [[2, 3, 4, 5], [5, 7], false, false, false],
        [[2, 3, 4, 5], [6, 8], true, false, false],
        [[2, 3, 4, 5], [6, 8], false, true, false],
      ];
      for (const [shape, size, alignCorners, halfPixelCenters, native] of cases) {
        const x = rand(rng, shape);
        const f = (a: tf.Tensor) =>
          tf.image.resizeNearestNeighbor(a as tf.Tensor4D, size, alignCorners, halfPixelCenters);
        await compare(
          `resize [${shape}] → ${size} align=${alignCorners} half=${halfPixelCenters}`,
          () => [f(t(x))],
          native,
        );
        if (!native) continue;
        // The cpu backend's gradient is wrong for some of these shapes (tfjs 4.22), so the
        // reference is computed here: each input pixel receives the sum of its sh×sw block.
        const [n, h, w, c] = shape, [bh, bw] = size, sh = bh / h, sw = bw / w;
        const wgt = rand(rng, [n, bh, bw, c]);
        const ref = new Float32Array(n * h * w * c);
        for (let b = 0; b < n; b++) {
          for (let i = 0; i < bh; i++) {
            for (let j = 0; j < bw; j++) {
              for (let k = 0; k < c; k++) {
                ref[((b * h + Math.floor(i / sh)) * w + Math.floor(j / sw)) * c + k] +=
                  wgt.data[((b * bh + i) * bw + j) * c + k];
              }
            }
          }
        }
        const before = runtime.dnnl!.runCount;
        const [g] = await onBackend("wasm", () => [tf.grad((a: tf.Tensor) => f(a).mul(t(wgt)).sum())(t(x))]);
        assert.ok(runtime.dnnl!.runCount > before, "oneDNN was not used");
        const err = relativeError(g, ref);
        assert.ok(err <= TOL, `resize gradient [${shape}] → ${size}: relative error ${err}`);
      }
    }),
});

Deno.test({
  name: "MaxPoolGrad and AvgPoolGrad match cpu (ties, negative windows, same/valid, strides 1-3)",
  ignore,
  fn: () =>
    everyProblemNative(async () => {
      // The SIMD pass must bind to the wasm backend's heap, or the runs below would not reach it.
      assert.ok(
        maxPoolSimd(tf.findBackend("wasm") as BackendWasm) !== null,
        "the max-pooling SIMD module is not in use",
      );
      for (const simd of [true, false]) await poolGrads(simd);
    }),
});

/** MaxPoolGrad and AvgPoolGrad on random problems, max pooling of 4–16 channels on the SIMD pass or not. */
async function poolGrads(simd: boolean): Promise<void> {
  setMaxPoolSimd(simd);
  try {
    const rng = mulberry32(110);
    for (let i = 0; i < 24; i++) {
      const shape = [int(rng, 1, 3), int(rng, 4, 11), int(rng, 4, 11), int(rng, 1, 20)];
      const f = int(rng, 1, 3), s = int(rng, 1, 3);
      const pad = i % 2 === 0 ? "same" : "valid";
      const info = tf.backend_util.computePool2DInfo(shape as [number, number, number, number], f, s, 1, pad);
      if (info.outHeight <= 0 || info.outWidth <= 0) continue;
      // Rounded, partly clamped values: many windows hold ties (as after a ReLU) or only negatives.
      const x = {
        shape,
        data: randomArray(rng, shape.reduce((a, b) => a * b)).map((v) => Math.round(v * 4) / 4 - 0.25),
      };
      const clampRelu = i % 3 === 0;
      await compare(`pool grads [${shape}] f${f} s${s} ${pad} relu=${clampRelu} simd=${simd}`, () => {
        const g = tf.grads((a: tf.Tensor) => {
          const h = clampRelu ? tf.relu(a) : a;
          const m = tf.maxPool(h as tf.Tensor4D, f, s, pad);
          const v = tf.avgPool(h as tf.Tensor4D, f, s, pad);
          const w = tf.range(1, m.size + 1).reshape(m.shape);
          return tf.add(m.mul(w).sum(), v.mul(w).sum());
        });
        return g([t(x)]);
      });
    }
  } finally {
    setMaxPoolSimd(true);
  }
}

Deno.test({
  name: "Add, Sub, Mul and Div match cpu with broadcasting either way",
  ignore,
  fn: () =>
    everyProblemNative(async () => {
      const rng = mulberry32(106);
      const full = [3, 4, 5, 6];
      const others = [[6], [1, 1, 1, 6], [], [1], [4, 1, 6], [3, 1, 1, 1], [1, 4, 5, 1], full];
      for (const o of others) {
        const a = rand(rng, full), b = rand(rng, o);
        const bb = { shape: o, data: b.data.map((v) => (v >= 0 ? v + 0.5 : v - 0.5)) }; // no division by ~0
        await compare(`binary [${full}] op [${o}]`, () => [
          tf.add(t(a), t(b)),
          tf.add(t(b), t(a)),
          tf.sub(t(a), t(b)),
          tf.sub(t(b), t(a)),
          tf.mul(t(a), t(b)),
          tf.mul(t(b), t(a)),
          tf.div(t(a), t(bb)),
          tf.div(t(b), t(a).abs().add(0.5)),
        ]);
      }
      // Both operands broadcast: left to the wasm kernel.
      const p = rand(rng, [3, 1, 5]), q = rand(rng, [1, 4, 1]);
      await compare(
        "binary [3,1,5] op [1,4,1]",
        () => [tf.add(t(p), t(q)), tf.mul(t(p), t(q)), tf.sub(t(q), t(p))],
        false,
      );
    }),
});

Deno.test({
  name: "Identity, Cast, Tile, Slice, Concat and SplitV match cpu (float32, int32, bool; ranks 1-5)",
  ignore,
  fn: async () => {
    const rng = mulberry32(107);
    for (let i = 0; i < 24; i++) {
      const rank = int(rng, 1, 5);
      const shape = Array.from({ length: rank }, () => int(rng, 1, 5));
      const reps = shape.map(() => int(rng, 1, 3));
      const begin = shape.map((s) => int(rng, 0, s - 1));
      const size = shape.map((s, d) => (rng() < 0.3 ? -1 : int(rng, 0, s - begin[d])));
      const x = rand(rng, shape);
      await compare(`identity/cast/tile/slice [${shape}] reps [${reps}] begin [${begin}] size [${size}]`, () => {
        const f = t(x);
        const n = tf.cast(f.mul(10), "int32");
        const b = tf.greater(f, 0);
        return [
          f.clone(),
          tf.cast(f, "float32"),
          tf.cast(n, "float32"),
          tf.tile(f, reps),
          tf.cast(tf.tile(n, reps), "float32"),
          tf.cast(tf.tile(b, reps), "float32"),
          tf.slice(f, begin, size),
          tf.cast(tf.slice(n, begin, size), "float32"),
          tf.cast(tf.slice(b, begin, size), "float32"),
        ];
      }, false);
    }
    // Concat along every axis, of 2-4 inputs with their own sizes along it (runs of one element up to long runs).
    for (let i = 0; i < 24; i++) {
      const rank = int(rng, 1, 4);
      const shape = Array.from({ length: rank }, () => int(rng, 1, i < 12 ? 4 : 40));
      const axis = int(rng, 0, rank - 1);
      const xs = Array.from(
        { length: int(rng, 2, 4) },
        (_, j) => rand(rng, shape.map((s, d) => (d === axis ? (j === 1 && rng() < 0.2 ? 0 : int(rng, 1, 3)) : s))),
      );
      await compare(`concat axis ${axis} of [${xs.map((x) => `[${x.shape}]`)}]`, () => {
        const fs = xs.map(t);
        return [
          tf.concat(fs, axis),
          tf.cast(tf.concat(fs.map((f) => tf.cast(f.mul(10), "int32")), axis), "float32"),
          tf.cast(tf.concat(fs.map((f) => tf.greater(f, 0)), axis), "float32"),
          // SplitV: the concatenation cut back into its parts (an empty part included), and into equal halves.
          ...tf.split(tf.concat(fs, axis), xs.map((x) => x.shape[axis]), axis),
          ...tf.split(tf.cast(tf.concat(fs.map((f) => tf.cast(f.mul(10), "int32")), axis), "float32"), [
            xs.reduce((s, x) => s + x.shape[axis], 0),
            0,
          ], axis),
          ...(xs[0].shape[axis] % 2 === 0 ? tf.split(fs[0], 2, axis) : []),
        ];
      }, false);
    }
    // A clone shares data but not lifetime: disposing the source keeps the clone readable.
    await tf.setBackend("wasm");
    const src = tf.tensor([1, 2, 3]);
    const copy = src.clone();
    src.dispose();
    assert.deepEqual(Array.from(copy.dataSync()), [1, 2, 3]);
    copy.dispose();
  },
});

Deno.test({
  name: "full gradients of a small CNN (conv+bias, BN, pool, strided conv, dense) match cpu at default thresholds",
  ignore,
  fn: async () => {
    const rng = mulberry32(108);
    const shapes: Record<string, number[]> = {
      x: [8, 16, 16, 3],
      w1: [3, 3, 3, 16],
      b1: [16],
      w2: [3, 3, 16, 24],
      gamma: [24],
      beta: [24],
      fc: [4 * 4 * 24, 10],
      fb: [10],
    };
    const data = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, rand(rng, s)]));
    const labels = Array.from({ length: 8 }, () => Math.floor(rng() * 10));
    const run = () => {
      const v = Object.fromEntries(Object.entries(data).map(([k, d]) => [k, t(d)]));
      const f = (...a: tf.Tensor[]) => {
        const [x, w1, b1, w2, gamma, beta, fc, fb] = a;
        let y: tf.Tensor = tf.fused.conv2d({
          x: x as tf.Tensor4D,
          filter: w1 as tf.Tensor4D,
          strides: 1,
          pad: "same",
          bias: b1,
          activation: "relu",
        });
        y = tf.maxPool(y as tf.Tensor4D, 2, 2, "valid");
        y = tf.conv2d(y as tf.Tensor4D, w2 as tf.Tensor4D, 2, [[0, 0], [1, 1], [1, 1], [0, 0]]);
        const { mean, variance } = tf.moments(y, [0, 1, 2]);
        y = tf.relu(tf.batchNorm(y, mean, variance, beta, gamma, 1e-5));
        const logits = tf.add(tf.matMul(y.reshape([8, -1]), fc as tf.Tensor2D), fb);
        return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 10), logits);
      };
      return tf.grads(f)(Object.keys(shapes).map((k) => v[k]));
    };
    const a = await onBackend("wasm", run);
    const b = await onBackend("cpu", run);
    const names = Object.keys(shapes);
    for (let i = 0; i < a.length; i++) {
      const err = relativeError(a[i], b[i]);
      assert.ok(err <= TOL, `gradient of ${names[i]}: relative error ${err}`);
      assert.ok(b[i].some((x) => x !== 0), `gradient of ${names[i]} is all zero`);
    }
  },
});

Deno.test({
  name: "convolutions split over the batch match cpu and give the same bits with and without the helper thread",
  ignore,
  fn: async () => {
    const d = runtime.dnnl!;
    const saved = { ...THRESHOLDS };
    THRESHOLDS.minMacs = 0;
    THRESHOLDS.parallelMacs = 0; // every problem is split
    try {
      assert.ok(d.splitReductions, "weight gradients are split by default");
      if (d.maxThreads === 2) assert.ok(d.splitInvariant, "on two cores forward and backward-data convs are split");
      const rng = mulberry32(115);
      const layers: [number[], number[], number, Pad][] = [
        [[8, 16, 16, 16], [3, 3, 16, 16], 1, "same"],
        [[6, 16, 16, 32], [3, 3, 32, 64], 2, [[0, 0], [1, 1], [1, 1], [0, 0]]],
        [[7, 8, 8, 64], [1, 1, 64, 128], 2, "valid"], // odd batch: halves of 4 and 3
        [[2, 9, 9, 3], [5, 5, 3, 6], 1, "same"],
      ];
      const helperBefore = d.helperCounts?.helper ?? 0;
      for (const [xs, ws, s, pad] of layers) {
        const x = rand(rng, xs), f = rand(rng, ws), bias = rand(rng, [ws[3]]);
        const dyShape = tf.tidy(() => tf.conv2d(t(x) as tf.Tensor4D, t(f) as tf.Tensor4D, s, pad).shape);
        const dy = rand(rng, dyShape);
        const attrs = { strides: [s, s], pad, dataFormat: "NHWC" };
        const fn = () =>
          [
            tf.engine().runKernel("Conv2DBackpropFilter", { x: t(x), dy: t(dy) }, { ...attrs, filterShape: ws }),
            tf.engine().runKernel("Conv2DBackpropInput", { dy: t(dy), filter: t(f) }, { ...attrs, inputShape: xs }),
            tf.fused.conv2d({
              x: t(x) as tf.Tensor4D,
              filter: t(f) as tf.Tensor4D,
              strides: s,
              pad,
              bias: t(bias),
              activation: "relu",
            }),
          ] as tf.Tensor[];
        const what = `[${xs}]*[${ws}] stride ${s}`;
        await compare(what, fn);
        const runs: Float32Array[][] = [];
        for (const useHelper of [true, true, false, true]) {
          d.useHelper = useHelper;
          runs.push(await onBackend("wasm", fn));
        }
        runs.forEach((r, i) =>
          r.forEach((out, k) =>
            assert.ok(out.every((u, j) => u === runs[0][k][j]), `${what}: run ${i} output ${k} differs`)
          )
        );
      }
      if (d.maxThreads > 1) assert.ok((d.helperCounts?.helper ?? 0) > helperBefore, "the helper thread ran no job");
    } finally {
      Object.assign(THRESHOLDS, saved);
      d.useHelper = true;
    }
  },
});

Deno.test({
  name: "kernels whose thread count adapts to the load give the same bits on 1 and 2 threads",
  ignore: ignore || (runtime.dnnl?.maxThreads ?? 1) < 2,
  fn: async () => {
    // Dnnl.run lets these switch between one and all threads depending on timing, which keeps
    // training reproducible only if their results do not depend on the thread count.
    const d = runtime.dnnl!;
    const saved = { ...THRESHOLDS }, fixed = d.fixedThreads;
    THRESHOLDS.minMacs = 0;
    THRESHOLDS.parallelMacs = 0;
    try {
      const rng = mulberry32(114);
      const layers: [number[], number[], number][] = [
        [[32, 32, 32, 16], [3, 3, 16, 16], 1],
        [[32, 16, 16, 32], [3, 3, 32, 64], 2],
        [[32, 8, 8, 64], [1, 1, 64, 128], 2],
        [[128, 28, 28, 1], [5, 5, 1, 6], 1],
        [[128, 14, 14, 6], [5, 5, 6, 16], 1],
      ];
      for (const [xs, ws, s] of layers) {
        const x = rand(rng, xs), w = rand(rng, ws), c = xs[3];
        const v = rand(rng, [c]),
          dyShape = tf.tidy(() => tf.conv2d(t(x) as tf.Tensor4D, t(w) as tf.Tensor4D, s, "same").shape);
        const dy = rand(rng, dyShape);
        const fn = () => [
          tf.conv2d(t(x) as tf.Tensor4D, t(w) as tf.Tensor4D, s, "same"),
          tf.engine().runKernel("Conv2DBackpropInput", { dy: t(dy), filter: t(w) }, {
            strides: [s, s],
            pad: "same",
            dataFormat: "NHWC",
            inputShape: xs,
          }) as tf.Tensor,
          tf.mul(t(x), t(v)),
          tf.tanh(t(x)),
          tf.batchNorm(t(x), t(v), t(v).abs().add(1), t(v), t(v), 1e-3),
        ];
        const runs: Float32Array[][] = [];
        for (const threads of [1, 2]) {
          d.fixedThreads = threads;
          runs.push(await onBackend("wasm", fn));
        }
        runs[0].forEach((a, i) => assert.ok(a.every((u, j) => u === runs[1][i][j]), `[${xs}]*[${ws}] output ${i}`));
      }
    } finally {
      Object.assign(THRESHOLDS, saved);
      d.fixedThreads = fixed;
    }
  },
});

Deno.test({
  name: "a few hundred training steps leak neither tensors, wasm heap nor native plans",
  ignore,
  fn: async () => {
    await tf.setBackend("wasm");
    const rng = mulberry32(109);
    const backend = tf.backend() as unknown as { numDataIds(): number; wasm: { HEAPU8: Uint8Array } };
    const w1 = tf.variable(t(rand(rng, [3, 3, 3, 16])).mul(0.2));
    const w2 = tf.variable(t(rand(rng, [3, 3, 16, 16])).mul(0.1));
    const fc = tf.variable(t(rand(rng, [8 * 8 * 16, 10])).mul(0.05));
    const gamma = tf.variable(tf.ones([16])), beta = tf.variable(tf.zeros([16]));
    const x = t(rand(rng, [16, 16, 16, 3]));
    const y = tf.oneHot(tf.tensor1d(Array.from({ length: 16 }, () => int(rng, 0, 9)), "int32"), 10);
    const opt = tf.train.adam(1e-3);
    const step = () => {
      const loss = opt.minimize(() => {
        let h: tf.Tensor = tf.relu(tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 1, "same"));
        h = tf.maxPool(h as tf.Tensor4D, 2, 2, "same");
        const { mean, variance } = tf.moments(h, [0, 1, 2]);
        h = tf.batchNorm(h, mean, variance, beta, gamma, 1e-5);
        h = tf.relu(tf.conv2d(h as tf.Tensor4D, w2 as tf.Tensor4D, 1, "same"));
        return tf.losses.softmaxCrossEntropy(y, tf.matMul(h.reshape([16, -1]), fc));
      }, true)!;
      const v = loss.dataSync()[0];
      loss.dispose();
      return v;
    };
    for (let i = 0; i < 20; i++) step();
    const tensors = tf.memory().numTensors, dataIds = backend.numDataIds();
    const heap = backend.wasm.HEAPU8.length, plans = runtime.dnnl!.cachedPlans;
    let last = 0;
    for (let i = 0; i < 300; i++) last = step();
    assert.ok(Number.isFinite(last), `loss ${last}`);
    assert.equal(tf.memory().numTensors, tensors, "tensors");
    assert.equal(backend.numDataIds(), dataIds, "wasm tensor records");
    assert.equal(backend.wasm.HEAPU8.length, heap, "wasm heap grew");
    assert.equal(runtime.dnnl!.cachedPlans, plans, "native plans");
    tf.dispose([w1, w2, fc, gamma, beta, x, y]);
    opt.dispose();
  },
});

Deno.test("MECO_NATIVE=0 keeps the pure wasm kernels", async () => {
  const script = `
    import { initBackend } from "${new URL("../../lib/backend/mod.ts", import.meta.url).href}";
    const r = await initBackend("wasm");
    console.log(r.reason);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    env: { MECO_NATIVE: "0", MECO_BACKEND: "" },
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /no native kernels: native kernels disabled by MECO_NATIVE=0/);
});

Deno.test({
  name: "oneDNN's OpenMP threads spin briefly before sleeping, unless the user set a wait policy",
  ignore,
  fn: async () => {
    const root = new URL("../../", import.meta.url).pathname;
    const code = `import { initBackend } from "./lib/backend/mod.ts";
      const r = await initBackend("wasm");
      console.log(JSON.stringify({ reason: r.reason, spin: Deno.env.get("GOMP_SPINCOUNT") ?? null }));`;
    const base = Deno.env.toObject();
    delete base.GOMP_SPINCOUNT;
    delete base.OMP_WAIT_POLICY;
    const cases: [Record<string, string>, RegExp, string | null][] = [
      [{}, /GOMP_SPINCOUNT=10000[,)]/, "10000"],
      [{ OMP_WAIT_POLICY: "passive" }, /OMP_WAIT_POLICY=passive[,)]/, null],
      [{ GOMP_SPINCOUNT: "300000" }, /GOMP_SPINCOUNT=300000[,)]/, "300000"],
    ];
    for (const [env, reason, spin] of cases) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--ext=ts", code],
        cwd: root,
        env: { ...base, ...env },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
      const got = JSON.parse(line) as { reason: string; spin: string | null };
      assert.match(got.reason, reason, JSON.stringify(env));
      assert.equal(got.spin, spin, JSON.stringify(env));
    }
  },
});
