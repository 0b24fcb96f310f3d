import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/backend/mod.ts";
import { runDefenseCost } from "../../lib/bench/cost_report.ts";
import { measureDefense } from "../../lib/bench/defense_cost.ts";
import { DEFENSE_WORKLOADS } from "../../lib/bench/defense_workloads.ts";
import type { Workload } from "../../lib/bench/workloads.ts";
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

/**
 * Runs `fn` with `performance.now` counting the tensors the engine creates instead of reading a clock: each kernel's
 * output is a new tensor, so "milliseconds" become a deterministic count of tensor operations, free of the machine's
 * load. The count is of tfjs tensors only: work a native kernel does within one operation counts once.
 */
async function withTensorClock<T>(fn: () => Promise<T>): Promise<T> {
  const engine = tf.engine() as unknown as { nextTensorId(): number };
  Object.defineProperty(performance, "now", { value: () => engine.nextTensorId(), configurable: true });
  try {
    return await fn();
  } finally {
    assert.ok(delete (performance as { now?: unknown }).now);
  }
}

Deno.test("measureTraining: a MeCo step does more work than a plain step; estimates follow from the step costs", async () => {
  const cfg = (await loadConfig("configs/defense_cost.yaml", "smoke")).config;
  const meco = cfg.defenses.find((d) => d.type === "meco");
  assert.ok(meco?.type === "meco");
  assert.equal(meco.train_subset, 512);
  const train = toSignedRange(subset(await loadDataset("mnist", "train"), 1024, { seed: 0 }));
  const wall = performance.now;
  const t = await withTensorClock(() => measureTraining(cfg, { ...meco, batch_size: 32 }, train, 2, 0));
  assert.equal(performance.now, wall, "the clock is restored");
  assert.equal(t.steps, 2);
  assert.equal(t.plain_batch_size, 128);
  assert.equal(t.meco_batch_size, 32);
  // A plain step is one forward and backward pass and an update: some tens of tensors at least. A MeCo step adds Q = 1
  // SVGD step (gradients of the target and of the perturbation network h) and the joint update of both: measured at
  // 27× the plain step's tensors with the native kernels, 12× without; 4× leaves room for changes to either.
  assert.ok(t.plain_ms_per_step >= 20, `plain step: ${t.plain_ms_per_step} tensors`);
  assert.ok(t.meco_ms_per_step > 4 * t.plain_ms_per_step, `MeCo ${t.meco_ms_per_step} vs plain ${t.plain_ms_per_step}`);
  const close = (a: number, b: number, what: string) =>
    assert.ok(Math.abs(a - b) <= 1e-9 * Math.abs(b), `${what}: ${a} vs ${b}`);
  close(t.overhead_per_image, (t.meco_ms_per_step / 32) / (t.plain_ms_per_step / 128), "overhead per image");
  // Full runs: 1024 images / 128 × 1 epoch of the smoke victim; min(512, 1024) images / 32 × 1 MeCo epoch.
  close(t.plain_minutes_full, (8 * t.plain_ms_per_step) / 60000, "plain minutes");
  close(t.meco_minutes_full, (16 * t.meco_ms_per_step) / 60000, "MeCo minutes");
});

/** Runs a workload once and returns what its query answered (the last tensor it read back). */
function answerOf(w: Workload): { shape: number[]; values: Float32Array } {
  const before = tf.memory().numTensors;
  const { run, dispose } = w.setup();
  const read: { shape: number[]; values: Float32Array }[] = [];
  const dataSync = tf.Tensor.prototype.dataSync;
  tf.Tensor.prototype.dataSync = function (this: tf.Tensor) {
    const values = dataSync.call(this);
    read.push({ shape: this.shape, values: Float32Array.from(values as Float32Array) });
    return values;
  } as typeof dataSync;
  try {
    run();
  } finally {
    tf.Tensor.prototype.dataSync = dataSync;
    dispose();
  }
  assert.equal(tf.memory().numTensors, before, `${w.name}: setup, run and dispose leave no tensor`);
  assert.ok(read.length > 0, `${w.name}: the answer is read back`);
  return read.at(-1)!;
}

Deno.test("bench: every defense's batch-1 and batch-256 workloads answer probabilities within the defense's budget", () => {
  const names = DEFENSE_WORKLOADS.map((w) => w.name);
  assert.equal(new Set(names).size, names.length, "names are unique");
  const labels = ["none", "randp", "mad", "grad", "grad_full", "reverse_sigmoid", "gaussian_noise", "meco"];
  assert.deepEqual(names, labels.flatMap((d) => [`defense_${d}_b1`, `defense_${d}_b256`]));
  for (const w of DEFENSE_WORKLOADS) {
    const [warmup, timed] = w.reps;
    assert.ok(Number.isInteger(warmup) && warmup >= 0 && Number.isInteger(timed) && timed >= 1, w.name);
  }
  // grad_full at batch 256 runs k backward passes per image (seconds): one timed call, and not run here.
  assert.deepEqual(DEFENSE_WORKLOADS.find((w) => w.name === "defense_grad_full_b256")!.reps, [0, 1]);
  // L1 distance of each answer from the undefended one, per image: [least, most]. The output perturbations have a
  // budget of ε = 1; the others change every answer by some amount.
  const budget = 1 + 1e-5;
  const expected: Record<string, (l1: number[]) => boolean> = {
    none: (d) => d.every((v) => v === 0),
    randp: (d) => d.every((v) => v > 0 && v <= budget),
    mad: (d) => d.every((v) => v > 0 && v <= budget),
    grad: (d) => d.every((v) => v > 0 && v <= budget),
    grad_full: (d) => d.every((v) => v > 0 && v <= budget),
    reverse_sigmoid: (d) => d.every((v) => v > 0 && v < 2),
    gaussian_noise: (d) => d.every((v) => v > 0 && v <= 2),
    meco: (d) => d.every((v) => v > 0 && v < 2),
  };
  for (const n of [1, 256]) {
    const plain = answerOf(DEFENSE_WORKLOADS.find((w) => w.name === `defense_none_b${n}`)!).values;
    for (const label of labels) {
      if (label === "grad_full" && n === 256) continue;
      const name = `defense_${label}_b${n}`;
      const { shape, values } = answerOf(DEFENSE_WORKLOADS.find((w) => w.name === name)!);
      assert.deepEqual(shape, [n, 10], name);
      const l1: number[] = [];
      for (let i = 0; i < n; i++) {
        const row = values.subarray(i * 10, i * 10 + 10);
        assert.ok(row.every((p) => p >= 0 && p <= 1), `${name}: row ${i} in [0, 1]: ${row}`);
        assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5, `${name}: row ${i} sums to 1: ${row}`);
        l1.push(row.reduce((a, p, c) => a + Math.abs(p - plain[i * 10 + c]), 0));
      }
      assert.ok(
        expected[label](l1),
        `${name}: L1 from the undefended answers in [${Math.min(...l1)}, ${Math.max(...l1)}]`,
      );
    }
  }
});

Deno.test("the cost experiment's rows record the run that measured them (smoke profile, minimal reps)", async () => {
  const cache = await Deno.makeTempDir({ prefix: "meco-cache-" });
  const out = await Deno.makeTempDir({ prefix: "meco-results-" });
  const old = Deno.env.get("MECO_CACHE_DIR");
  Deno.env.set("MECO_CACHE_DIR", cache);
  try {
    const loaded = await loadConfig("configs/defense_cost.yaml", "smoke");
    const s = await runDefenseCost(loaded, {
      resultsDir: out,
      reps: { rounds: 1, b1: 1, b256: 1 },
      trainSteps: 1,
      command: "test",
      log: () => {},
    });
    assert.equal(s.rows.length, loaded.config.defenses.length);
    for (const r of s.rows) {
      const p = r.provenance!;
      assert.equal(p.command, "test");
      assert.equal(p.commit, s.meta.commit);
      assert.equal(p.backend, s.meta.backend);
      assert.ok(p.cpu.length > 0 && Array.isArray(p.load), JSON.stringify(p));
    }
    assert.equal(s.meta.provenance!.rows_without, 0);
    assert.equal(s.meta.provenance!.runs, 1);
    assert.match(Deno.readTextFileSync(`${out}/rows.csv`).split("\n")[0], /\brun_commit\b.*\brun_cpu\b/);
  } finally {
    if (old === undefined) Deno.env.delete("MECO_CACHE_DIR");
    else Deno.env.set("MECO_CACHE_DIR", old);
    await Deno.remove(cache, { recursive: true });
    await Deno.remove(out, { recursive: true });
  }
});
