import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { loadOptimizerState, saveOptimizerState } from "../../lib/attacks/checkpoint.ts";
import { cosineLr, stepLr, TorchAdam, TorchSGD } from "../../lib/train/optim.ts";

await initBackend("wasm");

const GRADS = [[0.5, -1.0, 2.0], [0.1, 0.2, -0.3], [-1e-3, 5.0, 0.0], [2.0, 2.0, 2.0]];
// torch.optim.Adam([p], lr=0.1) from p = [1, -2, 3] with GRADS (lr set to 0.03 before the third step):
const TORCH = [
  [0.9000000357627869, -1.899999976158142, 2.9000000953674316],
  [0.8196959495544434, -1.8488973379135132, 2.844780206680298],
  [0.8011110424995422, -1.8653098344802856, 2.831974744796753],
  [0.7804602980613708, -1.8841906785964966, 2.812253952026367],
];

function step(opt: TorchAdam, p: tf.Variable, g: number[]) {
  tf.tidy(() => opt.applyGradients({ [p.name]: tf.tensor1d(g) }));
}

Deno.test("TorchAdam matches torch.optim.Adam step for step", () => {
  const p = tf.variable(tf.tensor1d([1, -2, 3]));
  const opt = new TorchAdam(0.1);
  GRADS.forEach((g, i) => {
    if (i === 2) opt.learningRate = 0.03;
    step(opt, p, g);
    const got = Array.from(p.dataSync());
    got.forEach((v, j) => assert.ok(Math.abs(v - TORCH[i][j]) < 1e-6, `step ${i}: ${got} vs ${TORCH[i]}`));
  });
  opt.dispose();
  p.dispose();
});

Deno.test("TorchAdam state round-trips exactly through a checkpoint, without leaking tensors", async () => {
  const dir = await Deno.makeTempDir();
  const run = async (interrupt: boolean) => {
    const p = tf.variable(tf.tensor1d([1, -2, 3]));
    let opt = new TorchAdam(0.1);
    for (const [i, g] of GRADS.entries()) {
      if (interrupt && i === 2) {
        const before = tf.memory().numTensors;
        await saveOptimizerState(`${dir}/opt`, opt);
        opt.dispose();
        opt = new TorchAdam(0.1);
        await loadOptimizerState(`${dir}/opt`, opt);
        assert.equal(tf.memory().numTensors, before, "save + reload kept extra tensors");
        assert.equal(opt.iterations, 2);
      }
      step(opt, p, g);
    }
    const out = Array.from(p.dataSync());
    opt.dispose();
    p.dispose();
    return out;
  };
  assert.deepEqual(await run(true), await run(false));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("TorchSGD follows torch.optim.SGD's update rule written out: momentum buffer started at the first gradient, weight decay added to it", () => {
  const p = tf.variable(tf.tensor1d([1, -2, 3]));
  const opt = new TorchSGD(0.1, 0.9, 0.01);
  const want = [1, -2, 3];
  let buf: number[] | undefined;
  for (const g of GRADS) {
    tf.tidy(() => opt.applyGradients([{ name: p.name, tensor: tf.tensor1d(g) }]));
    const d = g.map((v, j) => v + 0.01 * want[j]);
    buf = buf === undefined ? d : buf.map((b, j) => 0.9 * b + d[j]);
    buf.forEach((b, j) => (want[j] -= 0.1 * b));
    const got = Array.from(p.dataSync());
    got.forEach((v, j) => assert.ok(Math.abs(v - want[j]) < 1e-5, `${got} vs ${want}`));
  }
  opt.dispose();
  p.dispose();
});

Deno.test("learning-rate schedules: multi-step decay at the milestones, cosine annealing", () => {
  assert.equal(stepLr(0.1, 0.49, [0.5, 0.75]), 0.1);
  assert.ok(Math.abs(stepLr(0.1, 0.5, [0.5, 0.75]) - 0.01) < 1e-15);
  assert.ok(Math.abs(stepLr(0.1, 0.8, [0.5, 0.75], 0.5) - 0.025) < 1e-15);
  assert.equal(cosineLr(0.1, 0), 0.1);
  assert.ok(Math.abs(cosineLr(0.1, 0.5) - 0.05) < 1e-15);
  assert.equal(cosineLr(0.1, 2), 0);
});
