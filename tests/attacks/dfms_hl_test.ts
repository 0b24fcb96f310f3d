import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import {
  DfmsHlAttack,
  dfmsHlQueriesPerIteration,
  DfmsHlRun,
  dfmsHlSettings,
  proxyImages,
} from "../../lib/attacks/dfms_hl.ts";
import { syntheticShapes } from "../../lib/data/synthetic_shapes.ts";
import { dcganDiscriminator } from "../../lib/models/dcgan_discriminator.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import { accuracy, predictorOf } from "../../lib/metrics/accuracy.ts";
import { type Defense, undefended } from "../../lib/defenses/mod.ts";
import { BlackBox } from "../../lib/victim/mod.ts";
import { mnistVictim } from "./_victim.ts";

await initBackend("wasm");

const SHAPE = [28, 28, 1] as const;
const TINY = { batch_size: 8, proxy_batch_size: 4, gen_width: 4, nz: 16, proxy_size: 64, gan_pretrain_epochs: 1 };

Deno.test("synthetic shapes: seeded, in [0, 1], varied within and across images", () => {
  const a = syntheticShapes({ n: 20, height: 28, width: 28, channels: 3, seed: 5 });
  const b = syntheticShapes({ n: 20, height: 28, width: 28, channels: 3, seed: 5 });
  const c = syntheticShapes({ n: 20, height: 28, width: 28, channels: 3, seed: 6 });
  assert.deepEqual(a.images, b.images);
  assert.notDeepEqual(a.images, c.images);
  assert.equal(a.images.length, 20 * 28 * 28 * 3);
  assert.ok(a.images.every((v) => v >= 0 && v <= 1));
  const size = 28 * 28 * 3;
  let varied = 0;
  for (let i = 0; i < 20; i++) {
    const img = a.images.subarray(i * size, (i + 1) * size);
    const mean = img.reduce((s, v) => s + v, 0) / size;
    const sd = Math.sqrt(img.reduce((s, v) => s + (v - mean) ** 2, 0) / size);
    if (sd > 0.02) varied++;
  }
  assert.ok(varied >= 15, `only ${varied} of 20 images show shapes`);
  assert.throws(() => syntheticShapes({ n: 0, height: 28, width: 28, channels: 1, seed: 0 }), /n must be/);
});

Deno.test("proxy images are in [-1, 1]; a proxy dataset of another image shape is refused by name", async () => {
  const p = await proxyImages({ proxy_dataset: "synthetic", proxy_size: 10 }, SHAPE, 0);
  assert.equal(p.n, 10);
  assert.ok(p.images.every((v) => v >= -1 && v <= 1) && p.images.some((v) => v < 0));
  await assert.rejects(() => proxyImages({ proxy_dataset: "mnist", proxy_size: 10 }, [32, 32, 3], 0), /mnist.*28×28×1/);
});

Deno.test("the DCGAN discriminator maps images to one logit each", () => {
  const d = dcganDiscriminator({ seed: 0, imageShape: [28, 28, 1], width: 4 });
  const out = d.predict(tf.zeros([3, 28, 28, 1])) as tf.Tensor;
  assert.deepEqual(out.shape, [3, 1]);
  tf.dispose(out);
  d.dispose();
});

Deno.test("DFMS-HL queries only hard labels, exactly clone_iters·(batch + proxy batch) per iteration, tensors flat", () => {
  const victim = lenet5({ seed: 1 });
  let seen = 0;
  const oracle: Defense = {
    name: "counting",
    predict: (x) => {
      seen += x.shape[0];
      return undefended(victim).predict(x);
    },
    dispose: () => {},
  };
  const bb = new BlackBox(oracle, { imageShape: SHAPE, numClasses: 10, budget: 10_000, labels: "hard" });
  const s = dfmsHlSettings({ ...TINY, clone_iters: 2 });
  assert.equal(dfmsHlQueriesPerIteration(s), 2 * 12);
  const proxy = syntheticShapes({ n: 64, height: 28, width: 28, channels: 1, seed: 0 });
  const run = new DfmsHlRun(bb, s, 0, 10_000, proxy);
  run.step();
  const before = tf.memory().numTensors;
  for (let i = 2; i <= 4; i++) {
    run.step();
    assert.equal(bb.queries, i * 24);
    assert.ok(Number.isFinite(run.last.adv) && Number.isFinite(run.last.div) && Number.isFinite(run.last.clone));
    assert.ok(run.last.div <= 0 && run.last.div >= -Math.log(10) - 1e-5, `L_div ${run.last.div}`);
  }
  assert.equal(seen, 4 * 24);
  assert.equal(tf.memory().numTensors, before);
  run.dispose(false);
  victim.dispose();
});

Deno.test("GAN pretraining spends no queries and moves the generator", async () => {
  const victim = lenet5({ seed: 1 });
  const bb = new BlackBox(undefended(victim), { imageShape: SHAPE, numClasses: 10, budget: 100, labels: "hard" });
  const proxy = syntheticShapes({ n: 64, height: 28, width: 28, channels: 1, seed: 0 });
  const run = new DfmsHlRun(bb, dfmsHlSettings(TINY), 0, 100, proxy);
  const before = tf.tidy(() => tf.concat(run.generator.getWeights().map((w) => w.flatten())).dataSync());
  await run.prepare();
  const after = tf.tidy(() => tf.concat(run.generator.getWeights().map((w) => w.flatten())).dataSync());
  assert.equal(bb.queries, 0);
  assert.ok(before.some((v, i) => v !== after[i]));
  run.dispose(false);
  victim.dispose();
});

Deno.test("a short DFMS-HL run (hard labels only) lifts a clone of a trained LeNet-5 well above chance", async () => {
  const { victim, test, victimAcc } = await mnistVictim();
  assert.ok(victimAcc > 0.9, `victim accuracy ${victimAcc}`);
  const budget = 8000;
  const bb = new BlackBox(undefended(victim), { imageShape: SHAPE, numClasses: 10, budget, labels: "hard" });
  const attack = new DfmsHlAttack({
    batch_size: 64,
    proxy_batch_size: 16,
    gen_width: 8,
    nz: 32,
    proxy_size: 1000,
    gan_pretrain_epochs: 2,
    div_weight: 50,
  });
  const r = await attack.extract(bb, budget, { seed: 0, evaluate: (clone) => accuracy(predictorOf(clone), test) });
  const final = r.curve.at(-1)!;
  console.log(`DFMS-HL ${r.queries} queries: clone accuracy ${final.cloneAcc}`);
  assert.equal(r.queries, budget);
  assert.ok(final.cloneAcc > 0.25, `clone accuracy ${final.cloneAcc}`);
  r.clone.dispose();
  victim.dispose();
});
