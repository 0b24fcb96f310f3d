import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/backend/mod.ts";
import { DefenseSchema } from "../../lib/config/defense_schema.ts";
import { buildDefense } from "../../lib/defenses/build.ts";
import { mecoDefense } from "../../lib/defenses/meco.ts";
import { DenseHead, fullCoefficients } from "../../lib/defenses/surrogate.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import { perturbationNet } from "../../lib/models/perturbation.ts";
import { BlackBox } from "../../lib/victim/mod.ts";

await initBackend("wasm");
const OPTS = { seed: 3, imageShape: [28, 28, 1] as [number, number, number], numClasses: 10, arch: "lenet5" };

/** Random images in [-1, 1]. */
function images(n: number, seed: number): tf.Tensor4D {
  return tf.randomUniform([n, 28, 28, 1], -1, 1, "float32", seed) as tf.Tensor4D;
}

Deno.test("GRAD coefficients equal per-sample inner products of head gradients computed by autodiff", () => {
  const model = lenet5({ seed: 1 });
  const head = new DenseHead(model);
  const x = images(3, 1);
  const y = tf.softmax(tf.randomNormal([3, 10], 0, 2, "float32", 2)) as tf.Tensor2D;
  const c = head.coefficients(x, y).arraySync();
  const headVars = model.layers.slice(-3).flatMap((l) => l.trainableWeights.map((w) => w.read() as tf.Variable));
  const yv = y.arraySync();
  for (let i = 0; i < 3; i++) {
    const xi = x.slice(i, 1);
    const gradOf = (target: number[]) =>
      tf.variableGrads(() => {
        const logp = tf.logSoftmax(model.apply(xi, { training: false }) as tf.Tensor2D);
        return tf.neg(tf.sum(tf.mul(logp, tf.tensor2d([target]))));
      }, headVars as tf.Variable[]).grads;
    const gy = gradOf(yv[i]);
    for (let j = 0; j < 10; j++) {
      const gj = gradOf(Array.from({ length: 10 }, (_, c) => (c === j ? 1 : 0)));
      let dot = 0;
      for (const name of Object.keys(gy)) dot += tf.sum(tf.mul(gy[name], gj[name])).arraySync() as number;
      assert.ok(
        Math.abs(dot - c[i][j]) <= 1e-3 * Math.max(1, Math.abs(dot)),
        `sample ${i} class ${j}: ${c[i][j]} vs ${dot}`,
      );
      tf.dispose(Object.values(gj));
    }
    tf.dispose(Object.values(gy));
    xi.dispose();
  }
  tf.dispose([x, y]);
  model.dispose();
});

Deno.test("GRAD full-scope coefficients: ỹ · c is the inner product of all-parameter gradients", () => {
  const model = lenet5({ seed: 2 });
  const x = images(2, 3);
  const y = tf.softmax(tf.randomNormal([2, 10], 0, 2, "float32", 4)) as tf.Tensor2D;
  const yt = tf.softmax(tf.randomNormal([2, 10], 0, 2, "float32", 5)) as tf.Tensor2D;
  const c = fullCoefficients(model, x, y).arraySync();
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  for (let i = 0; i < 2; i++) {
    const grad = (target: tf.Tensor2D) =>
      tf.variableGrads(() => {
        const logp = tf.logSoftmax(model.apply(tf.slice(x, i, 1), { training: false }) as tf.Tensor2D);
        return tf.neg(tf.sum(tf.mul(logp, tf.slice(target, i, 1))));
      }, vars).grads;
    const gy = grad(y), gt = grad(yt);
    let dot = 0;
    for (const name of Object.keys(gy)) dot += tf.sum(tf.mul(gy[name], gt[name])).arraySync() as number;
    const ytRow = yt.arraySync()[i];
    const lin = ytRow.reduce((s, v, j) => s + v * c[i][j], 0);
    assert.ok(Math.abs(dot - lin) <= 1e-3 * Math.max(1, Math.abs(dot)), `sample ${i}: ${lin} vs ${dot}`);
    tf.dispose([...Object.values(gy), ...Object.values(gt)]);
  }
  tf.dispose([x, y, yt]);
  model.dispose();
});

const CONFIGS = [
  { type: "none" },
  { type: "randp", eps: 1 },
  { type: "randp", eps: 1, argmax_preserving: false },
  { type: "mad", eps: 1 },
  { type: "mad", eps: 1, argmax_preserving: false },
  { type: "grad", eps: 1 },
  { type: "grad", eps: 1, argmax_preserving: false },
  { type: "grad", eps: 0.3, surrogate_init: "victim" },
  { type: "grad", eps: 0.5, scope: "full" },
  { type: "reverse_sigmoid", beta: 0.7, gamma: 0.4 },
  { type: "high_conf_cutoff", threshold: 0.5 },
  { type: "rounding", decimals: 1 },
  { type: "top1" },
  { type: "gaussian_noise", std: 0.1 },
];

Deno.test("every defense runs from its config behind a BlackBox: probabilities, L1 budget, argmax, no leaks", () => {
  const victim = lenet5({ seed: 0 });
  // a confident victim: scale up the last layer so that outputs are far from uniform
  const last = victim.layers[victim.layers.length - 1];
  last.setWeights(last.getWeights().map((w) => tf.mul(w, 6)));
  const x = images(64, 5);
  const clean = tf.softmax(victim.apply(x) as tf.Tensor2D);
  for (const raw of CONFIGS) {
    const before = tf.memory().numTensors;
    const cfg = DefenseSchema.parse(raw);
    const defense = buildDefense(cfg, victim, OPTS);
    const bb = new BlackBox(defense, { imageShape: [28, 28, 1], numClasses: 10, budget: 1000 });
    const p = bb.query(x);
    assert.equal(bb.queries, 64);
    const [sums, min, l1, argP, argClean] = tf.tidy(() =>
      [
        tf.sum(p, 1).dataSync(),
        tf.min(p).dataSync()[0],
        tf.sum(tf.abs(tf.sub(p, clean)), 1).dataSync(),
        tf.argMax(p, 1).arraySync(),
        tf.argMax(clean, 1).arraySync(),
      ] as const
    );
    const tol = cfg.type === "rounding" ? 0.5 : 1e-4;
    for (const s of sums) assert.ok(Math.abs(s - 1) <= tol, `${cfg.type}: row sums to ${s}`);
    assert.ok(min >= 0, `${cfg.type}: negative probability`);
    if ("eps" in cfg) { for (const d of l1) assert.ok(d <= cfg.eps + 1e-4, `${cfg.type}: L1 ${d} > ${cfg.eps}`); }
    // A surrogate equal to the victim has zero gradient on the victim's own answers: GRAD leaves them as they are.
    const unchanged = cfg.type === "none" || (cfg.type === "grad" && cfg.surrogate_init === "victim");
    if (unchanged) assert.ok(Math.max(...l1) < 1e-5, `${cfg.type}: L1 ${Math.max(...l1)}`);
    else if (cfg.type !== "rounding") assert.ok(Math.max(...l1) > 1e-3, `${cfg.type} changes nothing`);
    // RandP, MAD and GRAD keep the top-1 by default; their argmax-flipping forms are named options.
    const keepsArgmax = "argmax_preserving" in cfg
      ? cfg.argmax_preserving
      : ["top1", "high_conf_cutoff", "none"].includes(cfg.type);
    if (keepsArgmax) assert.deepEqual(argP, argClean, cfg.type);
    if (keepsArgmax && (cfg.type === "randp" || (cfg.type === "grad" && cfg.surrogate_init !== "victim"))) {
      // The whole budget is used (the victim is confident enough for every answer to move by ε).
      for (const d of l1) assert.ok(d >= cfg.eps - 1e-3, `${cfg.type}: L1 ${d} < ${cfg.eps}`);
    }
    if ("argmax_preserving" in cfg && !cfg.argmax_preserving && cfg.eps >= 1) {
      const flipped = (argP as number[]).filter((a, i) => a !== (argClean as number[])[i]).length;
      assert.ok(flipped > 0, `${cfg.type}: the flipping form flips no answer`);
    }
    p.dispose();
    defense.dispose();
    assert.equal(tf.memory().numTensors, before, `${cfg.type}: tensors leaked`);
  }
  tf.dispose([x, clean]);
  victim.dispose();
});

Deno.test("buildDefense: meco without its trained nets and a missing surrogate architecture are clear errors", () => {
  const victim = lenet5({ seed: 0 });
  const meco = DefenseSchema.parse({
    type: "meco",
    gamma: 1,
    q: 1,
    alpha: 0.01,
    bound: 1,
    epochs: 1,
    batch_size: 8,
    lr: 1e-3,
  });
  assert.throws(
    () => buildDefense(meco, victim, OPTS),
    /defense 'meco': 'meco' needs its defensively trained target and perturbation network \(opts\.meco\)/,
  );
  const { arch: _arch, ...noArch } = OPTS;
  assert.throws(
    () => buildDefense(DefenseSchema.parse({ type: "mad", eps: 1 }), victim, noArch),
    /surrogate_arch is not set/,
  );
  victim.dispose();
});

Deno.test("buildDefense: meco answers with the given target behind h, as mecoDefense with the entry's settings", () => {
  const victim = lenet5({ seed: 0 });
  const meco = {
    target: lenet5({ seed: 1 }),
    perturb: perturbationNet({ imageShape: [28, 28, 1], width: 4, bound: 0.2, seed: 2 }),
  };
  const x = images(4, 5);
  const entry = (variant: "paper" | "official", name?: string) =>
    DefenseSchema.parse({
      type: "meco",
      ...(name !== undefined ? { name } : {}),
      gamma: 1,
      q: 1,
      alpha: 0.01,
      bound: 0.2,
      width: 4,
      epochs: 1,
      batch_size: 8,
      lr: 1e-3,
      variant,
    });
  for (const variant of ["paper", "official"] as const) {
    const before = tf.memory().numTensors;
    const built = buildDefense(entry(variant, "meco_w4"), victim, { ...OPTS, meco });
    const direct = mecoDefense(meco, { seed: OPTS.seed, variant, width: 4, bound: 0.2 });
    assert.equal(built.name, "meco_w4");
    assert.equal(buildDefense(entry(variant), victim, { ...OPTS, meco }).name, "meco");
    // Two queries in a row: the same ε stream, so the same answers, and a fresh ε for the second.
    const [b1, b2, d1, d2] = [built.predict(x), built.predict(x), direct.predict(x), direct.predict(x)];
    assert.deepEqual(b1.arraySync(), d1.arraySync(), variant);
    assert.deepEqual(b2.arraySync(), d2.arraySync(), variant);
    const moved = tf.tidy(() => tf.max(tf.abs(tf.sub(b1, b2))).dataSync()[0]);
    assert.ok(moved > 0, `${variant}: two queries got the same ε`);
    tf.dispose([b1, b2, d1, d2]);
    built.dispose();
    direct.dispose();
    assert.equal(tf.memory().numTensors, before, `${variant}: tensors leaked`);
  }
  // The defense disposes neither the victim nor MeCo's nets.
  for (const m of [victim, meco.target, meco.perturb]) assert.equal(m.getWeights()[0].isDisposed, false);
  tf.dispose(x);
  [victim, meco.target, meco.perturb].forEach((m) => m.dispose());
});
