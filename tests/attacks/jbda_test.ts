import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { ResumeError } from "../../lib/attacks/checkpoint.ts";
import {
  jacobianAugment,
  JbdaAttack,
  type JbdaConfigInput,
  jbdaQueries,
  jbdaSettings,
} from "../../lib/attacks/jbda.ts";
import { loadDataset, subset, toSignedRange } from "../../lib/data/mod.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import { accuracy, predictorOf } from "../../lib/metrics/accuracy.ts";
import { type LabelMode } from "../../lib/victim/mod.ts";
import { assertSameRun, crashedRun, mnistBox, mnistVictim } from "./_victim.ts";

await initBackend("wasm");

const pool = toSignedRange(subset(await loadDataset("mnist", "test"), 2000, { seed: 1 }));
const seedPool = () => Promise.resolve(pool);

/** JBDA's black boxes answer top-1 labels unless a test asks otherwise. */
const boxOver = (model: tf.LayersModel, budget: number, labels: LabelMode = "hard", spent = 0) =>
  mnistBox(model, budget, labels, spent);

Deno.test("defaults follow Papernot et al.: 150 seeds, 6 substitute epochs, λ 0.1 on [0, 1] pixels, hard labels", () => {
  const s = jbdaSettings();
  assert.equal(s.seed_size, 150);
  assert.equal(s.rounds, 6);
  assert.equal(s.lambda, 0.2); // 0.1 of the [0, 1] range = 0.2 of [-1, 1]
  assert.equal(s.label, "hard");
  assert.equal(jbdaQueries(s), 4800);
});

Deno.test("the augmentation steps λ along the sign of the label's logit gradient, clipped to [-1, 1]", () => {
  // A linear clone: logits = x·W, so ∂ logit_y / ∂x = W[:, y] and the step is exactly λ·sign(W[:, y]).
  const dim = 16, k = 3;
  const clone = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [4, 4, 1] }),
      tf.layers.dense({ units: k, useBias: false, kernelInitializer: tf.initializers.randomNormal({ seed: 2 }) }),
    ],
  });
  const w = clone.getWeights()[0].arraySync() as number[][];
  const n = 3;
  const images = new Float32Array(n * dim).map((_, i) => (i % 7) / 3 - 1); // values in [-1, 1], some at the ends
  const labels = Int32Array.from([0, 2, 1]);
  const lambda = 0.3;
  const out = jacobianAugment(clone, images, labels, [4, 4, 1], lambda, 2);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) {
      const x = images[i * dim + j];
      const want = Math.min(1, Math.max(-1, x + lambda * Math.sign(w[j][labels[i]])));
      assert.ok(Math.abs(out[i * dim + j] - want) < 1e-6, `image ${i} pixel ${j}: ${out[i * dim + j]} vs ${want}`);
    }
  }
  clone.dispose();
});

Deno.test("the set doubles each round; every point is queried once; the budget cuts the last round short", async () => {
  const victim = lenet5({ seed: 1 });
  const cfg: JbdaConfigInput = { seed_size: 10, rounds: 4, epochs: 1 };
  const seen: number[] = [];
  const before = tf.memory().numTensors;
  const r = await new JbdaAttack(cfg, { seedPool }).extract(boxOver(victim, 1000), 1000, {
    seed: 0,
    onProgress: (p) => void seen.push(p.queries),
  });
  assert.deepEqual(seen, [10, 20, 40, 80]);
  assert.equal(r.queries, jbdaQueries({ seed_size: 10, rounds: 4 }));
  r.clone.dispose();
  assert.equal(tf.memory().numTensors, before, "leaked tensors");
  // Budget 50: the fourth round labels only 10 of its 40 new points.
  const cut = await new JbdaAttack(cfg, { seedPool }).extract(boxOver(victim, 50, "soft"), 50, { seed: 0 });
  assert.equal(cut.queries, 50);
  cut.clone.dispose();
  await assert.rejects(
    () => new JbdaAttack({ seed_size: 3000 }, { seedPool }).extract(boxOver(victim, 5000), 5000, { seed: 0 }),
    /seed_size 3000 exceeds the seed pool mnist \(2000 images\)/,
  );
  victim.dispose();
});

Deno.test("a resumed JBDA run ends with the same clone, curve and queries as an uninterrupted one", async () => {
  const victim = lenet5({ seed: 1 });
  const cfg: JbdaConfigInput = { seed_size: 8, rounds: 4, epochs: 2 };
  const budget = 64;
  const evaluate = (clone: tf.LayersModel) => accuracy(predictorOf(clone), subset(pool, 200));
  const whole = await new JbdaAttack(cfg, { seedPool }).extract(boxOver(victim, budget), budget, { seed: 3, evaluate });
  const { dir, spent } = await crashedRun(
    new JbdaAttack(cfg, { seedPool }),
    boxOver(victim, budget),
    budget,
    { seed: 3, evaluate },
    2,
  );
  assert.equal(spent, 16);
  await assert.rejects(
    () => new JbdaAttack(cfg, { seedPool }).extract(boxOver(victim, budget), budget, { seed: 3, checkpointDir: dir }),
    ResumeError,
  );
  await assert.rejects(
    () =>
      new JbdaAttack({ ...cfg, lambda: 0.1 }, { seedPool }).extract(boxOver(victim, budget, "hard", spent), budget, {
        seed: 3,
        checkpointDir: dir,
      }),
    /settings differ/,
  );
  const resumed = await new JbdaAttack(cfg, { seedPool }).extract(boxOver(victim, budget, "hard", spent), budget, {
    seed: 3,
    evaluate,
    checkpointDir: dir,
  });
  assert.equal(resumed.queries, 64);
  assertSameRun(whole, resumed);
  assert.deepEqual(whole.curve.map((c) => c.queries), [8, 16, 32, 64]);
  for (const c of [whole.clone, resumed.clone]) c.dispose();
  victim.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a short JBDA run (150 seeds, 4 substitute epochs, hard labels) clones an MNIST LeNet-5 well above chance", async () => {
  const { victim, test, victimAcc } = await mnistVictim();
  assert.ok(victimAcc > 0.9, `victim accuracy ${victimAcc}`);
  const budget = 1200;
  const bb = boxOver(victim, budget);
  const t0 = performance.now();
  // Seed 0 reaches about 85% after 300 queries here (chance: 10%).
  const r = await new JbdaAttack({ rounds: 4 }, { seedPool }).extract(bb, budget, {
    seed: 0,
    evaluate: (clone) => accuracy(predictorOf(clone), test),
  });
  const final = r.curve.at(-1)!;
  console.log(
    `jbda: ${r.queries} queries in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(r.curve)}`,
  );
  assert.equal(r.queries, 1200);
  assert.deepEqual(r.curve.map((c) => c.queries), [150, 300, 600, 1200]);
  assert.ok(final.cloneAcc > 0.5, `clone accuracy ${final.cloneAcc}`);
  r.clone.dispose();
  victim.dispose();
});
