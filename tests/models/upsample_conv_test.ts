import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { UpsampleConv2D, upsampleConv2d } from "../../lib/models/upsample_conv.ts";
import { dfmeGenerator } from "../../lib/models/dfme_generator.ts";
import { roundTrip } from "./_round_trip.ts";
import { mulberry32, randomArray, relativeError } from "../backend/_compare.ts";

await initBackend("wasm");

/**
 * Nearest upsampling ×2 and a "same" 3×3 convolution with `layer`'s weights: what the layer replaces. The upsampling
 * repeats each pixel in a 2×2 block by concatenation, whose gradient every backend computes alike (tfjs 4.22's cpu
 * backend's ResizeNearestNeighborGrad disagrees with it and with the wasm backend's, at every size tried).
 */
function reference(x: tf.Tensor4D, layer: tf.layers.Layer): tf.Tensor {
  const [kernel, bias] = layer.getWeights();
  const [n, h, w, c] = x.shape;
  const wide = tf.reshape(tf.concat([x, x], 3), [n, h, 2 * w, c]);
  const up = tf.reshape(tf.concat([wide, wide], 2), [n, 2 * h, 2 * w, c]);
  const y = tf.conv2d(up as tf.Tensor4D, kernel as tf.Tensor4D, 1, "same");
  return bias === undefined ? y : tf.add(y, bias);
}

const flat = (t: tf.Tensor) => t.dataSync() as Float32Array;

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test(`UpsampleConv2D equals upsampling + 3×3 convolution, forward and both gradients (${backend})`, async () => {
    const previous = tf.getBackend();
    await tf.setBackend(backend);
    try {
      const rng = mulberry32(11);
      // Odd and even sizes, one pixel wide, bias or not, several channel counts.
      for (
        const [n, h, w, cin, cout, bias] of [[2, 5, 7, 3, 4, true], [3, 4, 4, 8, 16, false], [1, 1, 3, 2, 1, true]]
      ) {
        const layer = upsampleConv2d({ filters: cout as number, kernelSize: 3, useBias: bias as boolean });
        const x = tf.tensor4d(randomArray(rng, (n as number) * (h as number) * (w as number) * (cin as number)), [
          n as number,
          h as number,
          w as number,
          cin as number,
        ]);
        const sym = layer.apply(tf.input({ shape: [h as number, w as number, cin as number] })) as tf.SymbolicTensor;
        const y = layer.apply(x) as tf.Tensor;
        assert.deepEqual(y.shape, [n, 2 * (h as number), 2 * (w as number), cout]);
        assert.deepEqual(sym.shape.slice(1), y.shape.slice(1));
        const ref = reference(x, layer);
        assert.ok(relativeError(flat(y), flat(ref)) < 1e-5, `${[n, h, w, cin, cout]}: forward`);
        const dy = tf.tensor(randomArray(rng, y.size), y.shape);
        const weights = layer.trainableWeights.map((v) => v.read() as tf.Variable);
        const f = (g: (x: tf.Tensor4D) => tf.Tensor) => tf.variableGrads(() => tf.sum(tf.mul(g(x), dy)), weights).grads;
        const ours = f((xx) => layer.apply(xx) as tf.Tensor), theirs = f((xx) => reference(xx, layer));
        for (const v of weights) {
          assert.ok(
            relativeError(flat(ours[v.name]), flat(theirs[v.name])) < 1e-5,
            `${[n, h, w, cin, cout]}: d${v.name}`,
          );
        }
        const gx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx) as tf.Tensor, dy)))(x);
        const gr = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(reference(xx as tf.Tensor4D, layer), dy)))(x);
        assert.ok(relativeError(flat(gx), flat(gr)) < 1e-5, `${[n, h, w, cin, cout]}: input gradient`);
        tf.dispose([x, y, ref, dy, gx, gr, ...Object.values(ours), ...Object.values(theirs)]);
        layer.dispose();
      }
    } finally {
      await tf.setBackend(previous);
    }
  });
}

Deno.test("UpsampleConv2D rejects what it does not compute, and survives a save/load round trip", async () => {
  assert.throws(() => upsampleConv2d({ filters: 2, kernelSize: 5 }), /3×3 kernel/);
  assert.throws(() => upsampleConv2d({ filters: 2, kernelSize: 3, strides: 2 }), /stride 1/);
  assert.throws(() => upsampleConv2d({ filters: 2, kernelSize: 3, padding: "valid" }), /'same' padding/);
  const input = tf.input({ shape: [4, 4, 3] });
  const model = tf.model({
    inputs: input,
    outputs: upsampleConv2d({ filters: 2, kernelSize: 3 }).apply(input) as tf.SymbolicTensor,
  });
  const x = tf.randomNormal([2, 4, 4, 3]);
  const a = model.predict(x) as tf.Tensor;
  const back = await roundTrip(model);
  assert.ok(back.layers.some((l) => l instanceof UpsampleConv2D));
  assert.deepEqual(Array.from(flat(back.predict(x) as tf.Tensor)), Array.from(flat(a)));
  tf.dispose([x, a]);
  model.dispose();
  back.dispose();
});

Deno.test("the DFME generator with transposed upsampling convolutions equals the reference's layers", () => {
  const opts = { seed: 3, nz: 16, width: 4, imageShape: [12, 12, 2] as [number, number, number] };
  const fused = dfmeGenerator(opts), separate = dfmeGenerator({ ...opts, upsampleConv: "separate" });
  assert.ok(fused.layers.some((l) => l instanceof UpsampleConv2D));
  assert.ok(!separate.layers.some((l) => l instanceof UpsampleConv2D));
  // Seeded initialisation draws the same weights in the same order.
  const wa = fused.getWeights(), wb = separate.getWeights();
  assert.equal(wa.length, wb.length);
  wa.forEach((w, i) => assert.deepEqual(Array.from(flat(w)), Array.from(flat(wb[i]))));
  const z = tf.randomNormal([6, 16], 0, 1, "float32", 2);
  const dy = tf.randomNormal([6, 12, 12, 2], 0, 1, "float32", 3);
  const run = (gen: tf.LayersModel) => {
    const vars = gen.trainableWeights.map((v) => v.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.mul(gen.apply(z, { training: true }) as tf.Tensor, dy)),
      vars,
    );
    return {
      y: flat(gen.apply(z, { training: true }) as tf.Tensor),
      value: value.dataSync()[0],
      g: vars.map((v) => flat(grads[v.name])),
    };
  };
  const a = run(fused), b = run(separate);
  assert.ok(relativeError(a.y, b.y) < 1e-4, "training-mode output");
  assert.ok(Math.abs(a.value - b.value) <= 1e-4 * Math.max(1, Math.abs(b.value)));
  // A convolution's bias before a BatchNorm has a gradient of zero up to rounding: compare every gradient on the
  // scale of the largest.
  const scale = Math.max(...b.g.map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  a.g.forEach((g, i) => {
    const diff = g.reduce((m, v, j) => Math.max(m, Math.abs(v - b.g[i][j])), 0);
    assert.ok(diff <= 1e-4 * scale, `gradient of weight ${i}: ${diff} against ${scale}`);
  });
  tf.dispose([z, dy]);
  fused.dispose();
  separate.dispose();
});
