import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { AdaptiveAttack, AdaptiveRun, adaptiveSettings, perturbQueries } from "../../lib/attacks/adaptive.ts";
import { dfmeQueriesPerIteration } from "../../lib/attacks/dfme.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import { perturbationNet } from "../../lib/models/perturbation.ts";
import { accuracy, predictorOf } from "../../lib/metrics/accuracy.ts";
import { type Defense, undefended } from "../../lib/defenses/mod.ts";
import { BlackBox } from "../../lib/victim/mod.ts";
import { mnistVictim } from "./_victim.ts";

await initBackend("wasm");

const SHAPE = [28, 28, 1] as const;
const TINY = { batch_size: 8, gen_width: 4, nz: 16, perturb_width: 4, perturb_bound: 0.3 };

Deno.test("the attacker's perturbation is bounded, clipped to [-1, 1], random, and shared within a group", () => {
  const h = perturbationNet({ imageShape: [28, 28, 1], width: 4, bound: 0.3, seed: 0 });
  const t = perturbQueries(h);
  const x = tf.tile(tf.randomUniform([2, 28, 28, 1], -1, 1, "float32", 1), [3, 1, 1, 1]) as tf.Tensor4D; // rows 0..5
  const grouped = tf.concat([
    tf.slice(x, [0], [1]),
    tf.slice(x, [0], [1]),
    tf.slice(x, [1], [1]),
    tf.slice(x, [1], [1]),
  ]) as tf.Tensor4D;
  const y = t(grouped, 2, 7);
  const d = tf.sub(y, grouped);
  assert.ok(tf.max(tf.abs(d)).dataSync()[0] <= 0.3 + 1e-6);
  assert.ok(tf.max(tf.abs(d)).dataSync()[0] > 0.01);
  assert.ok(tf.max(tf.abs(y)).dataSync()[0] <= 1);
  const rows = tf.unstack(y);
  assert.equal(tf.max(tf.abs(tf.sub(rows[0], rows[1]))).dataSync()[0], 0); // same image, same ε
  const other = t(grouped, 2, 8);
  assert.ok(tf.max(tf.abs(tf.sub(other, y))).dataSync()[0] > 1e-3); // another draw
  assert.throws(() => t(grouped, 3, 0), /multiple of group/);
  tf.dispose([x, grouped, y, d, ...rows, other]);
  h.dispose();
});

Deno.test("adaptive: the black box sees perturbed queries, DFME's budget per iteration, h_a learns, tensors flat", () => {
  const victim = lenet5({ seed: 1 });
  const queried: Float32Array[] = [];
  const oracle: Defense = {
    name: "recording",
    predict: (x) => {
      queried.push(x.dataSync() as Float32Array);
      return undefended(victim).predict(x);
    },
    dispose: () => {},
  };
  const bb = new BlackBox(oracle, { imageShape: SHAPE, numClasses: 10, budget: 100_000 });
  const s = adaptiveSettings(TINY);
  const run = new AdaptiveRun(bb, s, 0, 100_000);
  const per = dfmeQueriesPerIteration(s);
  const h0 = tf.tidy(() => tf.concat(run.perturb.trainableWeights.map((w) => w.read().flatten())).dataSync());
  run.step();
  const h1 = tf.tidy(() => tf.concat(run.perturb.trainableWeights.map((w) => w.read().flatten())).dataSync());
  assert.ok(h0.some((v, i) => v !== h1[i]), "h_a did not change");
  assert.ok(Number.isFinite(run.lastPerturbLoss));
  // A tanh generator output almost never hits ±1 exactly; clipped perturbed queries do.
  assert.ok(queried.some((q) => q.some((v) => Math.abs(v) === 1)), "queries show no clipped perturbation");
  const before = tf.memory().numTensors;
  for (let i = 2; i <= 3; i++) {
    run.step();
    assert.equal(bb.queries, i * per);
  }
  assert.equal(tf.memory().numTensors, before);
  run.dispose(false);
  victim.dispose();
});

Deno.test("a short adaptive run lifts a clone of a trained LeNet-5 well above chance", async () => {
  const { victim, test, victimAcc } = await mnistVictim();
  assert.ok(victimAcc > 0.9, `victim accuracy ${victimAcc}`);
  const budget = 20_000; // the step schedule decays at 10/30/50% of it: shorter budgets leave too few full-rate steps
  const bb = new BlackBox(undefended(victim), { imageShape: SHAPE, numClasses: 10, budget });
  const attack = new AdaptiveAttack({ batch_size: 32, gen_width: 8, nz: 32, perturb_width: 4 });
  const r = await attack.extract(bb, budget, { seed: 0, evaluate: (clone) => accuracy(predictorOf(clone), test) });
  const final = r.curve.at(-1)!;
  console.log(`adaptive ${r.queries} queries: clone accuracy ${final.cloneAcc}`);
  assert.ok(final.cloneAcc > 0.2, `clone accuracy ${final.cloneAcc}`);
  r.clone.dispose();
  victim.dispose();
});
