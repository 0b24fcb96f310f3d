import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/backend/mod.ts";
import { measureDefense } from "../../lib/bench/defense_cost.ts";
import { DEFENSE_WORKLOADS } from "../../lib/bench/defense_workloads.ts";
import { measureTraining } from "../../lib/bench/training_cost.ts";
import { loadConfig } from "../../lib/config/mod.ts";
import { loadDataset, subset, toSignedRange } from "../../lib/data/mod.ts";
import { buildDefense } from "../../lib/defenses/build.ts";
import { lenet5 } from "../../lib/models/lenet.ts";

await initBackend("wasm");
const OPTS = { seed: 0, imageShape: [28, 28, 1] as [number, number, number], numClasses: 10, arch: "lenet5" };

Deno.test("measureDefense: latencies and peak memory; a surrogate defense holds more memory than none", async () => {
  const victim = lenet5({ seed: 0 });
  const x = tf.randomUniform([256, 28, 28, 1], -1, 1, "float32", 1) as tf.Tensor4D;
  const reps = { rounds: 2, b1: 2, b256: 1 };
  const tensors = tf.memory().numTensors;
  const none = buildDefense({ type: "none" }, victim, OPTS);
  const a = await measureDefense(none, x, reps);
  const mad = buildDefense({ type: "mad", eps: 1, argmax_preserving: false, surrogate_init: "random" }, victim, OPTS);
  const b = await measureDefense(mad, x, reps);
  mad.dispose();
  assert.equal(tf.memory().numTensors, tensors, "measuring leaks no tensors");
  for (const c of [a, b]) {
    assert.ok(c.ms_b1 > 0 && c.ms_b256 > 0);
    assert.equal(c.ms_per_query_b256, c.ms_b256 / 256);
    assert.deepEqual([c.reps_b1, c.reps_b256], [4, 2], "2 rounds of 2 batch-1 and 1 batch-256 calls");
    // the logits [256, 10] and probabilities alone are 2 × 10 KB; the input batch (800 KB) is live throughout
    assert.ok(c.peak_bytes_b256 !== null && c.peak_extra_bytes_b256 !== null, "profiled");
    assert.ok(c.peak_extra_bytes_b256 >= 2 * 256 * 10 * 4, `extra ${c.peak_extra_bytes_b256}`);
    assert.ok(c.peak_bytes_b256 >= 256 * 784 * 4 + c.peak_extra_bytes_b256);
  }
  // MAD runs a second LeNet-5 (the surrogate) whose weights are live as well
  assert.ok(b.peak_bytes_b256! > a.peak_bytes_b256!, `${b.peak_bytes_b256} vs ${a.peak_bytes_b256}`);
  await assert.rejects(() => measureDefense(none, tf.slice(x, 0, 8) as tf.Tensor4D, reps), /batch of 256/);
  none.dispose();
  x.dispose();
  victim.dispose();
});

Deno.test("measureTraining: a MeCo step costs more than a plain step of the same model", async () => {
  const cfg = (await loadConfig("configs/defense_cost.yaml", "smoke")).config;
  const meco = cfg.defenses.find((d) => d.type === "meco");
  assert.ok(meco?.type === "meco");
  const train = toSignedRange(subset(await loadDataset("mnist", "train"), 1024, { seed: 0 }));
  const t = await measureTraining(cfg, { ...meco, batch_size: 32 }, train, 2, 0);
  assert.ok(t.plain_ms_per_step > 0);
  assert.ok(
    t.meco_ms_per_step > t.plain_ms_per_step,
    `MeCo ${t.meco_ms_per_step} ms vs plain ${t.plain_ms_per_step} ms`,
  );
  assert.ok(t.overhead_per_image > 0);
  assert.ok(t.plain_minutes_full > 0 && t.meco_minutes_full > 0);
});

Deno.test("bench has a batch-1 and a batch-256 row per defense", () => {
  const names = DEFENSE_WORKLOADS.map((w) => w.name);
  for (const d of ["none", "randp", "mad", "grad", "meco"]) {
    assert.ok(names.includes(`defense_${d}_b1`) && names.includes(`defense_${d}_b256`), d);
  }
  const w = DEFENSE_WORKLOADS.find((w) => w.name === "defense_grad_b1")!;
  const { run, dispose } = w.setup();
  run();
  dispose();
});
