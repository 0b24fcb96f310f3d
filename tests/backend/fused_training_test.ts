import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { mulberry32, onBackend, randomArray, readyBoth, relativeError } from "./_compare.ts";
import { setNativeEnabled } from "../../lib/backend/native/mod.ts";
import { BATCH_NORM_TRAIN } from "../../lib/backend/native/batch_norm_train.ts";
import {
  ADAM_UPDATE,
  optimizerSimdActive,
  setOptimizerSimd,
  SGD_UPDATE,
} from "../../lib/backend/native/optimizer_update.ts";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { MecoBatchNorm } from "../../lib/models/batch_norm.ts";
import { makeOptimizer } from "../../lib/train/optim.ts";
import { loadModel, saveModel } from "../../lib/train/checkpoint.ts";
import { nativeTest } from "../_parts.ts";

await readyBoth();

/** A training-mode BatchNorm forward + backward: y, dx, dgamma, dbeta, moving mean, moving variance. */
function bnStep(layer: tf.layers.Layer, shape: number[], xs: Float32Array, ws: Float32Array, p: Float32Array[]) {
  return () => {
    layer.build(shape);
    const c = shape[shape.length - 1];
    layer.setWeights([tf.tensor1d(p[0]), tf.tensor1d(p[1]), tf.zeros([c]), tf.ones([c])]);
    const x = tf.tensor(xs, shape), w = tf.tensor(ws, shape);
    const f = (xx: tf.Tensor) => tf.sum(tf.mul(tf.square(layer.apply(xx, { training: true }) as tf.Tensor), w));
    const y = layer.apply(x, { training: true }) as tf.Tensor;
    const dx = tf.grad(f)(x);
    const vars = layer.trainableWeights.map((v) => v.read() as tf.Variable);
    const { grads, value } = tf.variableGrads(() => f(x) as tf.Scalar, vars);
    value.dispose();
    const out = [y, dx, ...vars.map((v) => grads[v.name]), ...layer.getWeights().slice(2)];
    return out;
  };
}

nativeTest(
  "MecoBatchNorm's fused training kernel (with and without ReLU) matches tfjs's BatchNormalization (+ relu) on cpu (values, gradients, moving stats)",
  async () => {
    const rng = mulberry32(7);
    for (const relu of [false, true]) {
      for (const shape of [[8, 6, 6, 16], [64, 20], [16, 5, 5, 3], [32, 7, 7, 1]]) {
        const c = shape[shape.length - 1], n = shape.reduce((a, b) => a * b, 1);
        const xs = randomArray(rng, n).map((v) => 3 * v + 0.5), ws = randomArray(rng, n);
        const p = [randomArray(rng, c).map((v) => 1 + 0.3 * v), randomArray(rng, c)];
        const args = { epsilon: 1e-5, momentum: 0.9 };
        const mine = await onBackend("wasm", bnStep(new MecoBatchNorm({ ...args, relu }), shape, xs, ws, p));
        // On cpu there is no fused kernel: MecoBatchNorm is tfjs's BatchNormalization followed by tf.relu.
        const refLayer = relu ? new MecoBatchNorm({ ...args, relu }) : tf.layers.batchNormalization(args);
        const ref = await onBackend("cpu", bnStep(refLayer, shape, xs, ws, p));
        const names = ["y", "dx", "dgamma", "dbeta", "moving mean", "moving variance"];
        names.forEach((name, i) => {
          const e = relativeError(mine[i], ref[i]);
          assert.ok(e < 1e-4, `${shape} relu=${relu} ${name}: relative error ${e}`);
        });
        if (relu) assert.ok(mine[0].some((v) => v === 0) && mine[0].every((v) => v >= 0), `${shape}: not clamped`);
      }
    }
  },
);

nativeTest(
  "MecoBatchNorm runs its training step (ReLU included) as one fused kernel on native wasm, and not with native off",
  async () => {
    await tf.setBackend("wasm");
    const model = tf.sequential({
      layers: [new MecoBatchNorm({ epsilon: 1e-5, momentum: 0.9, inputShape: [3, 3, 16], relu: true })],
    });
    const x = tf.randomNormal([4, 3, 3, 16], 0, 1, "float32", 1);
    const kernels = async () => (await tf.profile(() => model.apply(x, { training: true }) as tf.Tensor)).kernelNames;
    const fused = await kernels();
    assert.ok(fused.includes(BATCH_NORM_TRAIN) && !fused.includes("Relu"), `${fused}`);
    setNativeEnabled(false);
    try {
      const plain = await kernels();
      assert.ok(!plain.includes(BATCH_NORM_TRAIN) && plain.includes("Relu"), `${plain}`);
    } finally {
      setNativeEnabled(true);
    }
    tf.dispose(x);
    model.dispose();
  },
);

Deno.test("a model with MecoBatchNorm (+ ReLU) saves and loads (same class, same inference outputs)", async () => {
  await tf.setBackend("wasm");
  const input = tf.input({ shape: [4, 4, 8] });
  const model = tf.model({
    inputs: input,
    outputs: new MecoBatchNorm({ epsilon: 1e-5, relu: true }).apply(input) as tf.SymbolicTensor,
  });
  const x = tf.randomNormal([2, 4, 4, 8], 0, 1, "float32", 3);
  tf.tidy(() => void model.apply(x, { training: true })); // moves the moving averages
  const dir = await Deno.makeTempDir();
  await saveModel(model, `${dir}/m`);
  const back = await loadModel(`${dir}/m`);
  assert.equal(back.layers[1].getClassName(), "MecoBatchNorm");
  assert.equal((back.layers[1] as MecoBatchNorm).relu, true);
  const a = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
  assert.ok(a.some((v) => v === 0), "ReLU applied at inference");
  const b = tf.tidy(() => (back.predict(x) as tf.Tensor).dataSync());
  assert.deepEqual(Array.from(b), Array.from(a));
  tf.dispose([x]);
  model.dispose();
  back.dispose();
  await Deno.remove(dir, { recursive: true });
});

/** Three optimizer steps on two variables; returns their final values. */
function optimize(kind: "sgd" | "adam", fused: boolean): Float32Array[] {
  setNativeEnabled(fused);
  try {
    const rng = mulberry32(3);
    const vars = tf.tidy(() => [
      tf.variable(tf.tensor(randomArray(rng, 300), [10, 30])),
      tf.variable(tf.tensor1d(randomArray(rng, 7))),
    ]);
    const { optimizer } = makeOptimizer({ optimizer: kind, lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
    for (let s = 0; s < 3; s++) {
      tf.tidy(() =>
        optimizer.applyGradients(
          Object.fromEntries(vars.map((v) => [v.name, tf.tensor(randomArray(rng, v.size), v.shape)])),
        )
      );
    }
    const out = vars.map((v) => Float32Array.from(v.dataSync()));
    optimizer.dispose();
    tf.dispose(vars);
    return out;
  } finally {
    setNativeEnabled(true);
  }
}

// The fused updates are the project's own wasm kernels (no library needed); MECO_NATIVE=0 asks for none of its kernels.
Deno.test({
  name: "fused SGD and Adam updates (SIMD and TypeScript) equal the unfused tfjs chains, without leaking tensors",
  ignore: Deno.env.get("MECO_NATIVE") === "0",
}, async () => {
  await tf.setBackend("wasm");
  assert.ok(tf.getKernel(SGD_UPDATE, "wasm") !== undefined && tf.getKernel(ADAM_UPDATE, "wasm") !== undefined);
  assert.ok(optimizerSimdActive(tf.backend() as BackendWasm), "the SIMD module is not in use");
  for (const simd of [true, false]) {
    setOptimizerSimd(simd);
    try {
      for (const kind of ["sgd", "adam"] as const) {
        const before = tf.memory().numTensors;
        const fused = optimize(kind, true);
        assert.equal(tf.memory().numTensors, before, `${kind}: tensors leaked`);
        const plain = optimize(kind, false);
        fused.forEach((f, i) => {
          const e = relativeError(f, plain[i]);
          assert.ok(e < 1e-6, `${kind} (simd ${simd}) variable ${i}: relative error ${e}`);
        });
      }
    } finally {
      setOptimizerSimd(true);
    }
  }
});
