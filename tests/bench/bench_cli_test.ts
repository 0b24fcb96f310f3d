import assert from "node:assert/strict";
import { cpuName } from "../../lib/experiments/provenance.ts";

Deno.test("deno task bench: each line names the workload, its median and the machine it ran on", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "lib/bench/main.ts", "--only", "defense_none_b1"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  assert.equal(lines.length, 1);
  const row = JSON.parse(lines[0]);
  assert.deepEqual(Object.keys(row), ["name", "ms", "backend", "cpu", "onednn", "onednn_isa"]);
  assert.equal(row.name, "defense_none_b1");
  assert.ok(row.ms > 0, lines[0]);
  assert.equal(row.cpu, cpuName());
  // oneDNN's version and ISA together, or neither (not loaded).
  assert.equal(row.onednn === null, row.onednn_isa === null, lines[0]);
  if (row.onednn !== null) assert.match(row.onednn_isa, /^[a-z0-9_]+$/);
});

Deno.test("the bench's workloads are the PyTorch peer's six, and the MeCo step trains T and h", async () => {
  const tf = await import("@tensorflow/tfjs");
  const { initBackend } = await import("../../lib/backend/mod.ts");
  const { WORKLOADS } = await import("../../lib/bench/workloads.ts");
  await initBackend();
  assert.deepEqual(WORKLOADS.map((w) => w.name), [
    "lenet_train_step_b128",
    "lenet_forward_b128",
    "conv3x3_c64_s32_b32_fwd_bwd",
    "resnet18_8x_w16_train_step_b32",
    "dfme_mnist_iteration_g16",
    "meco_lenet_step_b128_h16",
  ]);
  // The MeCo step moves both networks' weights and leaves no tensor behind.
  const w = WORKLOADS.find((w) => w.name === "meco_lenet_step_b128_h16")!;
  const before = tf.memory().numTensors;
  const snapshot = () => tf.engine().state.registeredVariables;
  const vars = () => Object.values(snapshot()).map((v) => v.dataSync().slice());
  const { run, dispose } = w.setup();
  const v0 = vars();
  run();
  const tensors = tf.memory().numTensors;
  run();
  assert.equal(tf.memory().numTensors, tensors, "a step leaves no tensor behind");
  const v1 = vars();
  const moved = v0.filter((a, i) => a.some((x, j) => x !== v1[i][j])).length;
  assert.ok(moved >= v0.length / 2, `${moved} of ${v0.length} variables moved`);
  dispose();
  assert.ok(tf.memory().numTensors <= before + 2, `${tf.memory().numTensors} tensors after dispose vs ${before}`);
});
