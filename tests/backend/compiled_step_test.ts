import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { mulberry32, onBackend, randomArray, readyBoth, relativeError } from "./_compare.ts";
import { CompiledStep } from "../../lib/backend/native/compiled_step.ts";
import {
  crossEntropyLoss,
  l1Loss,
  type LogitsLoss,
  softCrossEntropyLoss,
} from "../../lib/backend/native/logits_loss.ts";
import { compiledStepSupport, readGraph } from "../../lib/backend/native/model_graph.ts";
import { runtime } from "../../lib/backend/native/runtime.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import { resnet8x } from "../../lib/models/resnet_8x.ts";
import { mobilenetV2 } from "../../lib/models/mobilenet_v2.ts";
import { buildClassifier } from "../../lib/models/registry.ts";
import { CROSS_ENTROPY, crossEntropy, klPerSample, softCrossEntropy } from "../../lib/train/losses.ts";
import { makeTrainer } from "../../lib/train/trainer.ts";
import { makeOptimizer } from "../../lib/train/optim.ts";
import { nativeTest } from "../_parts.ts";

await readyBoth();

/** A small ResNet-18-8x (4..32 filters) and LeNet-5, each with a batch of its input. */
function cases(): { name: string; model: () => tf.LayersModel; shape: number[] }[] {
  return [
    { name: "resnet18_8x", model: () => resnet8x({ depth: 18, seed: 3, width: 1 / 16 }), shape: [6, 32, 32, 3] },
    { name: "lenet5", model: () => lenet5({ seed: 3 }), shape: [10, 28, 28, 1] },
  ];
}

function inputs(shape: number[], seed: number): { xs: Float32Array; labels: number[] } {
  const rng = mulberry32(seed);
  const xs = randomArray(rng, shape.reduce((a, b) => a * b, 1));
  return { xs, labels: Array.from({ length: shape[0] }, (_, i) => (i * 7 + seed) % 10) };
}

Deno.test("compiled step: supported models are recognised, others are named with the reason", () => {
  assert.equal(compiledStepSupport(resnet8x({ depth: 18, seed: 0, width: 1 / 16 })), undefined);
  assert.equal(compiledStepSupport(lenet5({ seed: 0 })), undefined);
  const i = tf.input({ shape: [8, 8, 3] });
  const leaky = tf.layers.leakyReLU({ alpha: 0.2 }).apply(tf.layers.conv2d({ filters: 4, kernelSize: 3 }).apply(i));
  const flat = tf.layers.dense({ units: 10 }).apply(tf.layers.flatten().apply(leaky)) as tf.SymbolicTensor;
  assert.match(compiledStepSupport(tf.model({ inputs: i, outputs: flat })) ?? "", /unsupported: layer .*LeakyReLU/);
  const x = tf.input({ shape: [4] });
  const drop = tf.model({ inputs: x, outputs: tf.layers.dropout({ rate: 0.5 }).apply(x) as tf.SymbolicTensor });
  assert.match(compiledStepSupport(drop) ?? "", /Dropout/);
});

/** The compiled step of `model` for inputs of `shape` on the wasm backend. */
function compile(model: tf.LayersModel, shape: number[]): CompiledStep {
  return new CompiledStep(tf.backend() as BackendWasm, runtime.dnnl!, readGraph(model), model.trainableWeights, shape);
}

/**
 * Checks one compiled step of `model` on a batch (xs, labels) against tfjs's own gradients of the same loss on the
 * cpu backend, from the same weights: loss and every gradient to 1e-4 relative. Leaves the model on wasm.
 */
async function checkAgainstCpu(
  model: tf.LayersModel,
  shape: number[],
  xs: Float32Array,
  labels: number[],
  what: string,
) {
  const weights = model.getWeights().map((w) => w.dataSync().slice());
  const ref = await onBackend("cpu", () => {
    model.setWeights(weights.map((w, i) => tf.tensor(w, model.getWeights()[i].shape)));
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const x = tf.tensor(xs, shape), y = tf.tensor1d(labels, "int32");
    const { value, grads } = tf.variableGrads(
      () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor2D, y),
      vars,
    );
    return [value, ...vars.map((v) => grads[v.name])];
  });
  await tf.setBackend("wasm");
  model.setWeights(weights.map((w, i) => tf.tensor(w, model.getWeights()[i].shape)));
  const compiled = compile(model, shape);
  const x = tf.tensor(xs, shape);
  const frozen = tf.train.sgd(0); // leaves the weights as they are: only the gradients are compared
  const loss = compiled.run(x, crossEntropyLoss(labels), frozen);
  assert.ok(Math.abs(loss - ref[0][0]) < 1e-4 * Math.abs(ref[0][0]), `${what} loss ${loss} vs ${ref[0][0]}`);
  compiled.gradients.forEach((g, i) => {
    const e = relativeError(g.tensor.dataSync() as Float32Array, ref[i + 1]);
    assert.ok(e < 1e-4, `${what} gradient of ${g.name}: relative error ${e}`);
  });
  compiled.dispose();
  frozen.dispose();
  x.dispose();
}

nativeTest(
  "compiled step: gradients equal tfjs's on the cpu backend (ResNet-18-8x with BatchNorm, LeNet-5)",
  async () => {
    for (const c of cases()) {
      const { xs, labels } = inputs(c.shape, 1);
      const model = c.model();
      await checkAgainstCpu(model, c.shape, xs, labels, c.name);
      model.dispose();
    }
  },
);

/**
 * Trains `model` for `steps` steps of SGD (momentum, weight decay) through makeTrainer; returns losses, weights
 * (moving statistics included) and the trainer. (SGD moves weights in proportion to their gradients, so rounding
 * differences stay rounding-sized; Adam moves a weight by about lr even where its gradient is rounding noise.)
 */
function train(model: tf.LayersModel, shape: number[], steps: number) {
  const { optimizer } = makeOptimizer({ optimizer: "sgd", lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
  const trainer = makeTrainer(model, optimizer, CROSS_ENTROPY);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { xs, labels } = inputs(shape, s);
    const l = tf.tidy(() => trainer.step(tf.tensor(xs, shape), tf.tensor1d(labels, "int32")));
    losses.push(l.dataSync()[0]);
    l.dispose();
  }
  const weights = model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
  return { losses, weights, trainer, optimizer };
}

nativeTest("compiled step: training equals the engine path (losses, weights, BatchNorm moving statistics)", () => {
  for (const c of cases()) {
    const runs = ["1", "0"].map((flag) => {
      Deno.env.set("MECO_COMPILED_STEP", flag);
      try {
        const model = c.model();
        const r = train(model, c.shape, 3);
        const compiledRuns = r.trainer.compiledRuns;
        r.trainer.dispose();
        r.optimizer.dispose();
        model.dispose();
        return { ...r, compiledRuns };
      } finally {
        Deno.env.delete("MECO_COMPILED_STEP");
      }
    });
    assert.equal(runs[0].compiledRuns, 3, `${c.name}: the compiled path ran`);
    assert.equal(runs[1].compiledRuns, 0, `${c.name}: MECO_COMPILED_STEP=0 keeps the engine path`);
    runs[0].losses.forEach((l, i) => {
      const ref = runs[1].losses[i];
      assert.ok(Math.abs(l - ref) < 1e-4 * Math.abs(ref), `${c.name} loss ${i}: ${l} vs ${ref}`);
    });
    runs[0].weights.forEach((w, i) => {
      const e = relativeError(w, runs[1].weights[i]);
      assert.ok(e < 1e-4, `${c.name} weight ${i}: relative error ${e}`);
    });
  }
});

nativeTest("compiled step: memory stays flat over steps, batch sizes may change, dispose frees everything", () => {
  const model = resnet8x({ depth: 18, seed: 0, width: 1 / 16 });
  const before = tf.memory().numTensors;
  const { optimizer } = makeOptimizer({ optimizer: "sgd", lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const trainer = makeTrainer(model, optimizer, CROSS_ENTROPY);
  const counts: number[] = [];
  for (let s = 0; s < 8; s++) {
    const shape = [s % 4 === 3 ? 3 : 5, 32, 32, 3]; // a smaller last batch, as fit() makes
    const { xs, labels } = inputs(shape, s);
    const l = tf.tidy(() => trainer.step(tf.tensor(xs, shape), tf.tensor1d(labels, "int32")));
    assert.ok(Number.isFinite(l.dataSync()[0]));
    l.dispose();
    counts.push(tf.memory().numTensors);
  }
  assert.equal(trainer.compiledRuns, 8);
  // Buffers are made once per input shape (the second shape at step 4), then the count stays flat.
  assert.ok(counts.slice(3).every((n) => n === counts[3]), `tensor counts ${counts}`);
  trainer.dispose();
  optimizer.dispose();
  assert.equal(tf.memory().numTensors, before, "only the model's weights remain");
  model.dispose();
});

nativeTest("compiled step: a label outside the classes is a clear error; shared tensors keep their values", () => {
  const model = resnet8x({ depth: 18, seed: 1, width: 1 / 16 });
  const { optimizer } = makeOptimizer({ optimizer: "adam", lr: 1e-2 });
  const trainer = makeTrainer(model, optimizer, CROSS_ENTROPY);
  const shape = [4, 32, 32, 3];
  const { xs } = inputs(shape, 0);
  assert.throws(
    () => tf.tidy(() => trainer.step(tf.tensor(xs, shape), tf.tensor1d([0, 1, 12, 3], "int32"))),
    /label 12 of sample 2 is not a class index in \[0, 10\)/,
  );
  assert.equal(trainer.compiledRuns, 0, "nothing ran");
  // An input of another image size than the model was built for is left to the engine path (tfjs runs this
  // fully convolutional net on 28×28 too).
  const other = tf.tidy(() => trainer.step(tf.zeros([4, 28, 28, 3]), tf.tensor1d([0, 1, 2, 3], "int32")));
  assert.ok(Number.isFinite(other.dataSync()[0]));
  other.dispose();
  assert.equal(trainer.compiledRuns, 0, "nothing ran compiled");
  // The compiled step updates BatchNorm's moving averages in place; a tensor sharing that buffer (tf.clone
  // shares data on wasm) must keep its values.
  const moving = model.nonTrainableWeights[0].read();
  const snapshot = tf.clone(moving);
  const old = snapshot.dataSync().slice();
  tf.tidy(() => trainer.step(tf.tensor(xs, shape), tf.tensor1d([0, 1, 2, 3], "int32"))).dispose();
  assert.equal(trainer.compiledRuns, 1);
  assert.deepEqual(snapshot.dataSync(), old, "the clone kept its values");
  assert.notDeepEqual(model.nonTrainableWeights[0].read().dataSync(), old, "the moving average was updated");
  snapshot.dispose();
  trainer.dispose();
  optimizer.dispose();
  model.dispose();
});

Deno.test("compiled step losses: values and gradients equal tfjs's (cross-entropy, L1 to targets)", () => {
  const rng = mulberry32(5);
  const n = 7, k = 10;
  const z = randomArray(rng, n * k).map((v) => 4 * v), t = randomArray(rng, n * k);
  const labels = Array.from({ length: n }, (_, i) => (3 * i) % k);
  const probs = tf.tidy(() => tf.softmax(tf.tensor2d(t, [n, k]).mul(3)).dataSync() as Float32Array);
  const cases: [LogitsLoss, (zz: tf.Tensor2D) => tf.Scalar][] = [
    [crossEntropyLoss(labels), (zz) => crossEntropy(zz, tf.tensor1d(labels, "int32"))],
    [l1Loss(t), (zz) => tf.mean(tf.abs(tf.sub(zz, tf.tensor2d(t, [n, k]))))],
    [softCrossEntropyLoss(probs), (zz) => softCrossEntropy(zz, tf.tensor2d(probs, [n, k]))],
    [
      softCrossEntropyLoss(tf.tidy(() => tf.oneHot(labels, k).toFloat().dataSync() as Float32Array)),
      (zz) => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, k).toFloat(), zz) as tf.Scalar,
    ],
  ];
  for (const [mine, ref] of cases) {
    const grad = new Float32Array(n * k);
    const value = mine(z, grad, n, k);
    const { value: refValue, grad: refGrad } = tf.tidy(() => {
      const g = tf.valueAndGrad((zz: tf.Tensor) => ref(zz as tf.Tensor2D));
      const r = g(tf.tensor2d(z, [n, k]));
      return { value: r.value.dataSync()[0], grad: r.grad.dataSync() as Float32Array };
    });
    assert.ok(Math.abs(value - refValue) < 1e-6 * Math.max(1, Math.abs(refValue)), `${value} vs ${refValue}`);
    assert.ok(relativeError(grad, refGrad) < 1e-5, `gradient: relative error ${relativeError(grad, refGrad)}`);
  }
  // MAZE's KL(p ‖ softmax(z)) has the soft cross-entropy's gradient.
  const kl = (zz: tf.Tensor) => tf.mean(klPerSample(tf.tensor2d(probs, [n, k]), zz as tf.Tensor2D)) as tf.Scalar;
  const klGrad = tf.tidy(() => tf.grad(kl)(tf.tensor2d(z, [n, k])).dataSync() as Float32Array);
  const softGrad = new Float32Array(n * k);
  softCrossEntropyLoss(probs)(z, softGrad, n, k);
  assert.ok(relativeError(softGrad, klGrad) < 1e-5, "KL gradient");
  assert.throws(() => l1Loss(t).check?.(n, k + 1), /a target of 70 values for \[7, 11\] logits/);
  assert.throws(() => crossEntropyLoss(labels).check?.(n + 1, k), /7 labels for a batch of 8/);
});

nativeTest(
  "compiled step: DenseNet-121 and GoogLeNet (Concatenate, ZeroPadding2D, same-padded max pooling) gradients equal the engine path's",
  () => {
    for (const arch of ["densenet121", "googlenet"]) {
      const shape = [2, 32, 32, 3];
      const { xs, labels } = inputs(shape, 2);
      const model = buildClassifier(arch, { seed: 0, classes: 10, inputShape: [32, 32, 3], width: 0.25 });
      assert.equal(compiledStepSupport(model), undefined, arch);
      const x = tf.tensor(xs, shape);
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(
        () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor2D, tf.tensor1d(labels, "int32")),
        vars,
      );
      const compiled = compile(model, shape);
      const frozen = tf.train.sgd(0);
      const loss = compiled.run(x, crossEntropyLoss(labels), frozen);
      const ref = value.dataSync()[0];
      assert.ok(Math.abs(loss - ref) < 1e-4 * ref, `${arch} loss ${loss} vs ${ref}`);
      // A conv bias followed by BatchNorm has a zero gradient, which both paths compute as rounding noise of a sum
      // (≈ 1e-6 of the largest gradient here): gradients are compared to 1e-4 of their own scale, or of a tenth of the
      // largest gradient of the model where theirs is smaller.
      const refs = vars.map((v) => grads[v.name].dataSync() as Float32Array);
      const scale = Math.max(...refs.map((r) => r.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
      compiled.gradients.forEach((g, i) => {
        const a = g.tensor.dataSync() as Float32Array;
        let diff = 0, own = 0;
        for (let j = 0; j < a.length; j++) {
          diff = Math.max(diff, Math.abs(a[j] - refs[i][j]));
          own = Math.max(own, Math.abs(refs[i][j]));
        }
        assert.ok(diff < 1e-4 * Math.max(own, 0.1 * scale), `${arch} ${vars[i].name}: ${diff} (its scale ${own})`);
      });
      compiled.dispose();
      frozen.dispose();
      tf.dispose([x, value, ...Object.values(grads)]);
      model.dispose();
    }
  },
);

nativeTest(
  "compiled step: depthwise convolutions (same, and stride 2 after zero padding) match tfjs on cpu; MobileNetV2 compiles",
  async () => {
    type S = tf.SymbolicTensor;
    const init = (seed: number) => tf.initializers.randomUniform({ minval: -1, maxval: 1, seed });
    const build = (stride: number) => {
      const x = tf.input({ shape: [8, 8, 16] });
      let y: S = stride === 1 ? x : tf.layers.zeroPadding2d({ padding: 1 }).apply(x) as S;
      y = tf.layers.depthwiseConv2d({
        kernelSize: 3,
        strides: stride,
        padding: stride === 1 ? "same" : "valid",
        useBias: true,
        depthwiseInitializer: init(1),
        biasInitializer: init(2),
      }).apply(y) as S;
      y = tf.layers.globalAveragePooling2d({}).apply(y) as S;
      y = tf.layers.dense({ units: 10, kernelInitializer: init(3) }).apply(y) as S;
      return tf.model({ inputs: x, outputs: y });
    };
    const shape = [4, 8, 8, 16];
    const { xs, labels } = inputs(shape, 4);
    for (const stride of [1, 2]) {
      const model = build(stride);
      assert.equal(compiledStepSupport(model), undefined);
      await checkAgainstCpu(model, shape, xs, labels, `stride ${stride}`);
      model.dispose();
    }
    // MobileNetV2 (depthwise blocks, zero padding, residual adds): compiled, with the engine path's loss. Its gradients
    // are not compared here: with BatchNorm over a handful of rows (4×4 maps, batch 2) both paths and the cpu backend
    // differ from one another by 1e-3..1e-2 of rounding, amplified by the small variances.
    const mobile = mobilenetV2({ seed: 0, width: 0.25 });
    assert.equal(compiledStepSupport(mobile), undefined);
    const { optimizer } = makeOptimizer({ optimizer: "sgd", lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
    const trainer = makeTrainer(mobile, optimizer, CROSS_ENTROPY);
    const mshape = [4, 32, 32, 3];
    const m = inputs(mshape, 5);
    const engineLoss = tf.tidy(() =>
      crossEntropy(
        mobile.apply(tf.tensor(m.xs, mshape), { training: true }) as tf.Tensor2D,
        tf.tensor1d(m.labels, "int32"),
      )
        .dataSync()[0]
    );
    const l = tf.tidy(() => trainer.step(tf.tensor(m.xs, mshape), tf.tensor1d(m.labels, "int32")));
    assert.ok(
      Math.abs(l.dataSync()[0] - engineLoss) < 1e-4 * engineLoss,
      `MobileNetV2 loss ${l.dataSync()[0]} vs ${engineLoss}`,
    );
    assert.equal(trainer.compiledRuns, 1);
    l.dispose();
    trainer.dispose();
    optimizer.dispose();
    mobile.dispose();
  },
);

nativeTest("compiled step: training is bit-reproducible, with or without the helper thread", () => {
  const d = runtime.dnnl!;
  const run = (useHelper: boolean) => {
    d.useHelper = useHelper;
    try {
      const model = resnet8x({ depth: 18, seed: 2, width: 1 / 8 });
      const r = train(model, [8, 32, 32, 3], 3);
      assert.equal(r.trainer.compiledRuns, 3);
      r.trainer.dispose();
      r.optimizer.dispose();
      model.dispose();
      return r;
    } finally {
      d.useHelper = true;
    }
  };
  const [a, b, c] = [run(true), run(true), run(false)];
  assert.deepEqual(b.losses, a.losses);
  assert.deepEqual(c.losses, a.losses);
  a.weights.forEach((w, i) => {
    assert.deepEqual(b.weights[i], w, `weight ${i}, second run`);
    assert.deepEqual(c.weights[i], w, `weight ${i}, without the helper`);
  });
});
