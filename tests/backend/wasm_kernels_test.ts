import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { replacedKernel, WASM_TRAINING_KERNELS } from "../../lib/backend/mod.ts";
import { mulberry32, onBackend, randomArray, readyBoth, relativeError, type Rng } from "./_compare.ts";

const TOL = 1e-4;
await readyBoth();

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)];
}
function int(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

type Pad = "same" | "valid" | [[0, 0], [number, number], [number, number], [0, 0]];
function randomPad(rng: Rng): Pad {
  const p = pick(rng, ["same", "valid", "explicit"] as const);
  if (p !== "explicit") return p;
  return [[0, 0], [int(rng, 0, 2), int(rng, 0, 2)], [int(rng, 0, 2), int(rng, 0, 2)], [0, 0]];
}

interface Case {
  n: number;
  h: number;
  w: number;
  cin: number;
  cout: number;
  fh: number;
  fw: number;
  stride: number;
  dilation: number;
  pad: Pad;
}

function randomCase(rng: Rng, i: number, depthwise: boolean): Case {
  const stride = i % 2 === 0 ? 1 : 2;
  // tfjs allows dilation > 1 only with stride 1, and only the depthwise
  // backprop ops take a dilation attribute.
  const dilation = depthwise && stride === 1 && rng() < 0.5 ? 2 : 1;
  const cin = int(rng, 1, 5);
  return {
    n: i < 2 ? 1 : int(rng, 2, 4),
    h: int(rng, 5, 11),
    w: int(rng, 5, 11),
    cin,
    cout: depthwise ? cin * int(rng, 1, 3) : int(rng, 1, 6),
    fh: int(rng, 1, 3),
    fw: int(rng, 1, 3),
    stride,
    dilation,
    pad: i === 0 ? "same" : i === 1 ? "valid" : randomPad(rng),
  };
}

function outShape(c: Case): number[] {
  const info = tf.backend_util.computeConv2DInfo(
    [c.n, c.h, c.w, c.cin],
    [c.fh, c.fw, c.cin, c.cout / (c.cout % c.cin === 0 ? c.cin : 1)],
    c.stride,
    c.dilation,
    c.pad,
    undefined,
    false,
  );
  return [c.n, info.outHeight, info.outWidth, c.cout];
}

type Inputs = Record<string, { shape: number[]; data: Float32Array }>;

function kernelRunner(kernel: string, inputs: Inputs, attrs: Record<string, unknown>) {
  return () => {
    const ts: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(inputs)) ts[k] = tf.tensor(v.data, v.shape);
    return [tf.engine().runKernel(kernel, ts as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor];
  };
}

async function compareKernel(
  kernel: string,
  c: Case,
  inputs: Inputs,
  attrs: Record<string, unknown>,
  reference?: () => Promise<Float32Array>,
): Promise<number> {
  const [a] = await onBackend("wasm", kernelRunner(kernel, inputs, attrs));
  const b = reference ? await reference() : (await onBackend("cpu", kernelRunner(kernel, inputs, attrs)))[0];
  const err = relativeError(a, b);
  assert.ok(err <= TOL, `${kernel} ${JSON.stringify(c)}: relative error ${err}`);
  return err;
}

Deno.test("the training kernels are registered for wasm", () => {
  // Native (oneDNN) kernels may sit on top of ours and fall back to them.
  for (const k of WASM_TRAINING_KERNELS) {
    const reg = tf.getKernel(k.kernelName, "wasm");
    assert.ok(reg === k || replacedKernel(k.kernelName) === k, k.kernelName);
  }
});

Deno.test("Conv2DBackpropFilter and Conv2DBackpropInput match cpu on random shapes", async () => {
  const rng = mulberry32(11);
  for (let i = 0; i < 24; i++) {
    const c = randomCase(rng, i, false);
    const [, oh, ow] = outShape(c);
    if (oh <= 0 || ow <= 0) continue;
    const x = { shape: [c.n, c.h, c.w, c.cin], data: randomArray(rng, c.n * c.h * c.w * c.cin) };
    const dy = { shape: [c.n, oh, ow, c.cout], data: randomArray(rng, c.n * oh * ow * c.cout) };
    const filter = { shape: [c.fh, c.fw, c.cin, c.cout], data: randomArray(rng, c.fh * c.fw * c.cin * c.cout) };
    const common = { strides: [c.stride, c.stride], pad: c.pad, dataFormat: "NHWC", dimRoundingMode: undefined };
    await compareKernel("Conv2DBackpropFilter", c, { x, dy }, { ...common, filterShape: filter.shape });
    await compareKernel("Conv2DBackpropInput", c, { dy, filter }, { ...common, inputShape: x.shape });
  }
});

Deno.test("Depthwise backprop kernels match cpu on random shapes (multiplier, dilation)", async () => {
  const rng = mulberry32(12);
  let dilated = 0, multiplied = 0;
  for (let i = 0; i < 24; i++) {
    const c = randomCase(rng, i, true);
    const m = c.cout / c.cin;
    const info = tf.backend_util.computeConv2DInfo(
      [c.n, c.h, c.w, c.cin],
      [c.fh, c.fw, c.cin, m],
      c.stride,
      c.dilation,
      c.pad,
      undefined,
      true,
    );
    if (info.outHeight <= 0 || info.outWidth <= 0) continue;
    dilated += c.dilation > 1 ? 1 : 0;
    multiplied += m > 1 ? 1 : 0;
    const x = { shape: [c.n, c.h, c.w, c.cin], data: randomArray(rng, c.n * c.h * c.w * c.cin) };
    const dyShape = [c.n, info.outHeight, info.outWidth, c.cout];
    const dy = { shape: dyShape, data: randomArray(rng, dyShape.reduce((a, b) => a * b)) };
    const filter = { shape: [c.fh, c.fw, c.cin, m], data: randomArray(rng, c.fh * c.fw * c.cin * m) };
    const common = {
      strides: [c.stride, c.stride],
      dilations: [c.dilation, c.dilation],
      pad: c.pad,
      dimRoundingMode: undefined,
    };
    // The cpu kernels ignore `dilations` (tfjs never differentiates dilated
    // depthwise convs), so dilated cases are checked against cpu on the
    // equivalent undilated filter with zeros between the taps.
    const d = c.dilation;
    const ef = [(c.fh - 1) * d + 1, (c.fw - 1) * d + 1, c.cin, m];
    const undilated = { ...common, dilations: [1, 1] };
    const refFilter = d === 1 ? undefined : async () => {
      const full = (await onBackend(
        "cpu",
        kernelRunner("DepthwiseConv2dNativeBackpropFilter", { x, dy }, { ...undilated, filterShape: ef }),
      ))[0];
      const out = new Float32Array(c.fh * c.fw * c.cin * m);
      for (let i = 0; i < c.fh; i++) {
        for (let j = 0; j < c.fw; j++) {
          const src = ((i * d) * ef[1] + j * d) * c.cin * m;
          out.set(full.subarray(src, src + c.cin * m), (i * c.fw + j) * c.cin * m);
        }
      }
      return out;
    };
    const refInput = d === 1 ? undefined : async () => {
      const expanded = new Float32Array(ef[0] * ef[1] * c.cin * m);
      for (let i = 0; i < c.fh; i++) {
        for (let j = 0; j < c.fw; j++) {
          const dst = ((i * d) * ef[1] + j * d) * c.cin * m;
          expanded.set(filter.data.subarray((i * c.fw + j) * c.cin * m, (i * c.fw + j + 1) * c.cin * m), dst);
        }
      }
      return (await onBackend(
        "cpu",
        kernelRunner(
          "DepthwiseConv2dNativeBackpropInput",
          { dy, filter: { shape: ef, data: expanded } },
          { ...undilated, inputShape: x.shape },
        ),
      ))[0];
    };
    await compareKernel(
      "DepthwiseConv2dNativeBackpropFilter",
      c,
      { x, dy },
      { ...common, filterShape: filter.shape },
      refFilter,
    );
    await compareKernel(
      "DepthwiseConv2dNativeBackpropInput",
      c,
      { dy, filter },
      { ...common, inputShape: x.shape },
      refInput,
    );
  }
  assert.ok(dilated > 0 && multiplied > 0, `coverage: dilated ${dilated}, multiplied ${multiplied}`);
});

Deno.test("a larger layer (batch 8, 16→24 channels, 3×3, stride 2) matches cpu", async () => {
  const rng = mulberry32(13);
  const c: Case = { n: 8, h: 16, w: 16, cin: 16, cout: 24, fh: 3, fw: 3, stride: 2, dilation: 1, pad: "same" };
  const [, oh, ow] = outShape(c);
  const x = { shape: [8, 16, 16, 16], data: randomArray(rng, 8 * 16 * 16 * 16) };
  const dy = { shape: [8, oh, ow, 24], data: randomArray(rng, 8 * oh * ow * 24) };
  const filter = { shape: [3, 3, 16, 24], data: randomArray(rng, 3 * 3 * 16 * 24) };
  const common = { strides: [2, 2], pad: "same", dataFormat: "NHWC" };
  await compareKernel("Conv2DBackpropFilter", c, { x, dy }, { ...common, filterShape: filter.shape });
  await compareKernel("Conv2DBackpropInput", c, { dy, filter }, { ...common, inputShape: x.shape });
});

Deno.test("full gradients of a small CNN (conv, depthwise, BN, pool, dense) match cpu", async () => {
  const rng = mulberry32(14);
  const shapes: Record<string, number[]> = {
    x: [4, 12, 12, 3],
    w1: [3, 3, 3, 8],
    dw: [3, 3, 8, 2],
    w2: [1, 1, 16, 6],
    w3: [2, 2, 6, 5],
    fc: [5 * 9, 10],
  };
  const data = Object.fromEntries(
    Object.entries(shapes).map(([k, s]) => [k, randomArray(rng, s.reduce((a, b) => a * b))]),
  );
  const labels = Array.from({ length: 4 }, () => Math.floor(rng() * 10));
  const run = () => {
    const t = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, tf.tensor(data[k], s)]));
    const f = (x: tf.Tensor, w1: tf.Tensor, dw: tf.Tensor, w2: tf.Tensor, w3: tf.Tensor, fc: tf.Tensor) => {
      let y: tf.Tensor = tf.relu(tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 1, "same"));
      const { mean, variance } = tf.moments(y, [0, 1, 2]);
      y = tf.mul(tf.sub(y, mean), tf.rsqrt(tf.add(variance, 1e-5)));
      y = tf.depthwiseConv2d(y as tf.Tensor4D, dw as tf.Tensor4D, 2, "same");
      y = tf.maxPool(tf.conv2d(y as tf.Tensor4D, w2 as tf.Tensor4D, 1, "valid"), 2, 1, "same");
      y = tf.conv2d(y as tf.Tensor4D, w3 as tf.Tensor4D, 2, [[0, 0], [1, 0], [1, 0], [0, 0]]);
      const logits = tf.matMul(y.reshape([4, -1]), fc as tf.Tensor2D);
      return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 10), logits);
    };
    const grads = tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor);
    return grads([t.x, t.w1, t.dw, t.w2, t.w3, t.fc]);
  };
  const a = await onBackend("wasm", run);
  const b = await onBackend("cpu", run);
  const names = Object.keys(shapes);
  for (let i = 0; i < a.length; i++) {
    const err = relativeError(a[i], b[i]);
    assert.ok(err <= TOL, `gradient of ${names[i]}: relative error ${err}`);
    assert.ok(b[i].some((v) => v !== 0), `gradient of ${names[i]} is all zero`);
  }
});

Deno.test("MaxPoolGrad matches cpu, including windows whose maximum is negative", async () => {
  const rng = mulberry32(15);
  for (let i = 0; i < 16; i++) {
    const n = int(rng, 1, 3), h = int(rng, 4, 9), w = int(rng, 4, 9), c = int(rng, 1, 4);
    const f = int(rng, 2, 3), s = int(rng, 1, 2);
    const pad = pick(rng, ["same", "valid"] as const);
    const data = randomArray(rng, n * h * w * c).map((v) => v - 0.5); // mostly negative
    const run = () => {
      const x = tf.tensor4d(data, [n, h, w, c]);
      const g = tf.grad((a: tf.Tensor) => {
        const y = tf.maxPool(a as tf.Tensor4D, f, s, pad);
        return y.mul(tf.range(1, y.size + 1).reshape(y.shape)).sum();
      });
      return [g(x)];
    };
    const [a] = await onBackend("wasm", run);
    const [b] = await onBackend("cpu", run);
    const err = relativeError(a, b);
    assert.ok(err <= TOL, `MaxPoolGrad f${f} s${s} ${pad} [${n},${h},${w},${c}]: relative error ${err}`);
  }
});
