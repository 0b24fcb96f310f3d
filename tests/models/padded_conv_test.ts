import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { PaddedConv2D, paddedConv2d } from "../../lib/models/padded_conv.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { roundTrip } from "./_round_trip.ts";
import { mulberry32, randomArray, relativeError } from "../backend/_compare.ts";

await initBackend("wasm");

/** zero-pad + valid conv, the construction PaddedConv2D replaces, with the same weights. */
function reference(x: tf.Tensor4D, layer: tf.layers.Layer, p: number, stride: number): tf.Tensor {
  const [kernel, bias] = layer.getWeights();
  const y = tf.conv2d(tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]), kernel as tf.Tensor4D, stride, "valid");
  return bias === undefined ? y : tf.add(y, bias);
}

Deno.test("PaddedConv2D equals zero padding + valid convolution, forward and backward, and keeps its shape", () => {
  const rng = mulberry32(5);
  for (const [k, stride, p, bias] of [[3, 2, 1, false], [5, 2, 2, true], [3, 1, 1, true], [3, 3, 0, false]] as const) {
    const layer = paddedConv2d({ filters: 6, kernelSize: k, strides: stride, useBias: bias, symmetricPadding: p });
    const x = tf.tensor4d(randomArray(rng, 2 * 9 * 11 * 4), [2, 9, 11, 4]);
    const input = tf.input({ shape: [9, 11, 4] });
    const sym = layer.apply(input) as tf.SymbolicTensor;
    const y = layer.apply(x) as tf.Tensor;
    assert.deepEqual(y.shape.slice(1), sym.shape.slice(1), `k${k} s${stride} p${p}: symbolic shape`);
    const ref = reference(x, layer, p, stride);
    assert.deepEqual(y.shape, ref.shape);
    assert.ok(relativeError(y.dataSync() as Float32Array, ref.dataSync() as Float32Array) < 1e-5);
    const dy = tf.tensor(randomArray(rng, y.size), y.shape);
    const g = tf.grads((xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx) as tf.Tensor, dy)))([x])[0];
    const gr = tf.grads((xx: tf.Tensor) => tf.sum(tf.mul(reference(xx as tf.Tensor4D, layer, p, stride), dy)))([x])[0];
    assert.ok(relativeError(g.dataSync() as Float32Array, gr.dataSync() as Float32Array) < 1e-5, "input gradient");
    tf.dispose([x, y, ref, dy, g, gr]);
    layer.dispose();
  }
});

Deno.test("PaddedConv2D survives a save/load round trip and rejects a bad padding", async () => {
  const input = tf.input({ shape: [8, 8, 3] });
  const out = paddedConv2d({ filters: 4, kernelSize: 3, strides: 2, symmetricPadding: 1 }).apply(input);
  const model = tf.model({ inputs: input, outputs: out as tf.SymbolicTensor });
  const x = tf.randomNormal([1, 8, 8, 3]);
  const a = model.predict(x) as tf.Tensor;
  const back = await roundTrip(model);
  assert.ok(back.layers.some((l) => l instanceof PaddedConv2D));
  const b = back.predict(x) as tf.Tensor;
  assert.deepEqual(Array.from(b.dataSync()), Array.from(a.dataSync()));
  assert.throws(() => paddedConv2d({ filters: 1, kernelSize: 3, symmetricPadding: -1 }), /symmetricPadding/);
  tf.dispose([x, a, b]);
  model.dispose();
  back.dispose();
});
