import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { ResumeError } from "../../lib/attacks/checkpoint.ts";
import { MazeAttack, mazeQueriesPerIteration, MazeRun, mazeSettings } from "../../lib/attacks/maze.ts";
import { ReplayBuffer } from "../../lib/attacks/replay_buffer.ts";
import { mulberry32 } from "../../lib/data/rng.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import { klPerSample } from "../../lib/train/losses.ts";
import { cosineLr } from "../../lib/train/optim.ts";
import { accuracy, predictorOf } from "../../lib/metrics/accuracy.ts";
import type { Defense } from "../../lib/defenses/mod.ts";
import { BlackBox } from "../../lib/victim/mod.ts";
import { assertSameRun, crashedRun, mnistBox, mnistVictim } from "./_victim.ts";

await initBackend("wasm");

const SHAPE = [28, 28, 1] as const;
const TINY = { batch_size: 8, gen_width: 4, nz: 16, n_dirs: 2, clone_iters: 3, replay_iters: 2 };

const boxOver = mnistBox;

Deno.test("MAZE defaults follow the paper; budget per iteration B·((clone_iters − 1) + (1 + n_dirs)·gen_iters)", () => {
  const s = mazeSettings();
  assert.equal(s.n_dirs, 10);
  assert.equal(s.eps, 1e-3);
  assert.equal(s.batch_size, 128);
  assert.equal(mazeQueriesPerIteration(s), 128 * (4 + 11));
  assert.equal(mazeQueriesPerIteration({ batch_size: 8, clone_iters: 3, n_dirs: 2, gen_iters: 2 }), 8 * (2 + 6));
  assert.equal(cosineLr(0.1, 0), 0.1);
  assert.ok(Math.abs(cosineLr(0.1, 0.5) - 0.05) < 1e-12);
  assert.ok(Math.abs(cosineLr(0.1, 1)) < 1e-12);
});

Deno.test("klPerSample is KL(p ‖ softmax(logits)) and zero for equal distributions", () => {
  const p = tf.tensor2d([[0.5, 0.5, 0], [0.2, 0.3, 0.5]]);
  const logits = tf.tensor2d([[0, 0, 0], [0, 0, 0]]);
  const got = klPerSample(p, logits).arraySync();
  const want = [0.5 * Math.log(1.5) * 2, [0.2, 0.3, 0.5].reduce((s, v) => s + v * Math.log(v * 3), 0)];
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-5, `${v} vs ${want[i]}`));
  const same = klPerSample(p, tf.log(tf.maximum(p, 1e-30)) as tf.Tensor2D).arraySync();
  same.forEach((v) => assert.ok(Math.abs(v) < 1e-5));
  tf.dispose([p, logits]);
});

Deno.test("every MAZE iteration spends exactly its budget, fills the replay buffer, keeps tensors flat", () => {
  const victim = lenet5({ seed: 1 });
  const bb = boxOver(victim, 100_000);
  const s = mazeSettings(TINY);
  const run = new MazeRun(bb, s, 0, 100_000);
  const per = mazeQueriesPerIteration(s);
  run.step();
  const before = tf.memory().numTensors;
  for (let i = 2; i <= 4; i++) {
    run.step();
    assert.equal(bb.queries, i * per);
    // gen_iters base batches and clone_iters − 1 fresh batches per iteration are kept
    assert.equal(run.replay.size, i * 8 * (1 + 2));
  }
  assert.equal(tf.memory().numTensors, before);
  run.dispose(false);
  victim.dispose();
});

Deno.test("MAZE's zeroth-order estimate in image space approaches the true gradient of −KL per sample", () => {
  const dim = 16, k = 3, n = 2, m = 4000;
  const wVictim = tf.randomNormal([dim, k], 0, 1, "float32", 11);
  const victimLogits = (x: tf.Tensor) => tf.matMul(tf.reshape(x, [-1, dim]), wVictim);
  const oracle: Defense = {
    name: "softmax-linear",
    predict: (x) => tf.softmax(victimLogits(x)) as tf.Tensor2D,
    dispose: () => {},
  };
  const makeClone = (seed: number) =>
    tf.sequential({
      layers: [
        tf.layers.flatten({ inputShape: [4, 4, 1] }),
        tf.layers.dense({ units: k, kernelInitializer: tf.initializers.randomNormal({ seed }) }),
      ],
    });
  const bb = new BlackBox(oracle, { imageShape: [4, 4, 1], numClasses: k, budget: 1e9 });
  const run = new MazeRun(bb, mazeSettings({ batch_size: n, n_dirs: m, nz: 4, gen_width: 2 }), 0, 1e9, { makeClone });
  const x = tf.randomUniform([n, 4, 4, 1], -0.9, 0.9, "float32", 5) as tf.Tensor4D;
  const { gradient, answers, loss } = run.gradientEstimate(x, 123);
  assert.equal(bb.queries, n * (m + 1));
  const perSample = (xs: tf.Tensor) =>
    tf.neg(klPerSample(tf.softmax(victimLogits(xs)) as tf.Tensor2D, run.clone.apply(xs) as tf.Tensor2D));
  const trueGrad = tf.grad((xs: tf.Tensor) => tf.sum(perSample(xs)))(x);
  const est = tf.mul(gradient, n);
  for (let i = 0; i < n; i++) {
    const a = tf.slice(est, [i], [1]).flatten(), b = tf.slice(trueGrad, [i], [1]).flatten();
    const cos = tf.div(tf.dot(a, b), tf.mul(tf.norm(a), tf.norm(b))).dataSync()[0];
    const ratio = tf.div(tf.norm(a), tf.norm(b)).dataSync()[0];
    assert.ok(cos > 0.9, `sample ${i}: cosine ${cos}`);
    assert.ok(ratio > 0.8 && ratio < 1.25, `sample ${i}: norm ratio ${ratio}`);
    tf.dispose([a, b]);
  }
  const p = tf.softmax(victimLogits(x));
  assert.ok(tf.max(tf.abs(tf.sub(answers, p))).dataSync()[0] < 1e-5); // the answers at the unperturbed points
  assert.ok(Math.abs(loss.dataSync()[0] - tf.mean(perSample(x)).dataSync()[0]) < 1e-4);
  tf.dispose([wVictim, x, gradient, answers, loss, trueGrad, est, p]);
  run.dispose(false);
});

Deno.test("MAZE refuses a hard-label black box", async () => {
  const victim = lenet5({ seed: 1 });
  await assert.rejects(
    () => new MazeAttack(TINY).extract(boxOver(victim, 1000, "hard"), 1000, { seed: 0 }),
    /soft-label/,
  );
  victim.dispose();
});

Deno.test("the replay buffer keeps the most recent images, samples them, and survives save/load", async () => {
  const buf = new ReplayBuffer([1, 1, 1], 2, 3);
  const add = (vals: number[]) =>
    tf.tidy(() =>
      buf.add(tf.tensor4d(vals, [vals.length, 1, 1, 1]), tf.tensor2d(vals.flatMap((v) => [v, -v]), [vals.length, 2]))
    );
  add([1, 2]);
  add([3, 4]);
  assert.equal(buf.size, 3);
  const seen = new Set<number>();
  const { x, p } = buf.sample(200, mulberry32(1));
  const xs = x.dataSync(), ps = p.dataSync();
  xs.forEach((v, i) => {
    seen.add(v);
    assert.equal(ps[2 * i], v);
    assert.equal(ps[2 * i + 1], -v);
  });
  assert.deepEqual([...seen].sort(), [2, 3, 4]); // 1 was evicted
  tf.dispose([x, p]);
  const dir = await Deno.makeTempDir();
  await buf.save(dir);
  const back = new ReplayBuffer([1, 1, 1], 2, 3);
  await back.load(dir);
  assert.equal(back.size, 3);
  const a = back.sample(50, mulberry32(2)), b = buf.sample(50, mulberry32(2));
  assert.deepEqual(a.x.dataSync(), b.x.dataSync());
  tf.dispose([a.x, a.p, b.x, b.p]);
  await assert.rejects(() => new ReplayBuffer([2, 1, 1], 2).load(dir), ResumeError);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a resumed MAZE run (replay buffer included) ends like an uninterrupted one", async () => {
  const victim = lenet5({ seed: 1 });
  const per = mazeQueriesPerIteration(mazeSettings(TINY));
  const budget = 6 * per;
  const cfg = { ...TINY, eval_every: 2 * per, checkpoint_every: 2 * per };
  const evaluate = (clone: tf.LayersModel) =>
    tf.tidy(() => tf.mean(clone.predict(tf.ones([1, ...SHAPE])) as tf.Tensor).dataSync()[0]);
  const whole = await new MazeAttack(cfg).extract(boxOver(victim, budget), budget, { seed: 3, evaluate });
  const { dir, spent } = await crashedRun(
    new MazeAttack(cfg),
    boxOver(victim, budget),
    budget,
    { seed: 3, evaluate },
    3,
  );
  assert.equal(spent, 2 * per);
  const resumed = await new MazeAttack(cfg).extract(boxOver(victim, budget, "soft", spent), budget, {
    seed: 3,
    evaluate,
    checkpointDir: dir,
  });
  assertSameRun(whole, resumed);
  await assert.rejects(
    () =>
      new MazeAttack({ ...cfg, n_dirs: 3 }).extract(boxOver(victim, budget, "soft", budget), budget, {
        seed: 3,
        checkpointDir: dir,
      }),
    (e: unknown) => e instanceof ResumeError && /settings differ/.test(e.message),
  );
  for (const c of [whole.clone, resumed.clone]) c.dispose();
  victim.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a short MAZE run lifts a clone of a trained LeNet-5 well above chance", async () => {
  const { victim, test, victimAcc } = await mnistVictim();
  assert.ok(victimAcc > 0.9, `victim accuracy ${victimAcc}`);
  const budget = 10_000;
  const attack = new MazeAttack({ batch_size: 32, gen_width: 8, nz: 32, n_dirs: 2, replay_iters: 2 });
  const r = await attack.extract(boxOver(victim, budget), budget, {
    seed: 0,
    evaluate: (clone) => accuracy(predictorOf(clone), test),
  });
  const final = r.curve.at(-1)!;
  console.log(`MAZE ${r.queries} queries: clone accuracy ${final.cloneAcc}`);
  assert.equal(r.queries, Math.floor(budget / (32 * 7)) * 32 * 7);
  assert.ok(final.cloneAcc > 0.3, `clone accuracy ${final.cloneAcc}`);
  r.clone.dispose();
  victim.dispose();
});
