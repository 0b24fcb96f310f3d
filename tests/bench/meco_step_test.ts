import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { mecoStepMemory } from "../../lib/bench/meco_step.ts";

await initBackend("wasm");

Deno.test("MeCo step memory: a recomputed ResNet step and a LeNet-5 step keep the tensor count flat", () => {
  const resnet = mecoStepMemory({
    arch: "resnet18_8x",
    width: 1 / 16,
    batch: 8,
    hWidth: 4,
    steps: 3,
    tapeBudget: 2 ** 16,
  });
  assert.ok(resnet.plan.recompute && resnet.plan.pieces > 1 && resnet.plan.svgdChunks > 1, JSON.stringify(resnet.plan));
  const lenet = mecoStepMemory({ arch: "lenet5", width: 1, batch: 16, hWidth: 4, steps: 3 });
  assert.deepEqual(lenet.plan, { recompute: false, pieces: 1, svgdChunks: 1 });
  for (const { samples } of [resnet, lenet]) {
    assert.equal(samples.length, 3);
    assert.equal(samples[2].numTensors, samples[1].numTensors, JSON.stringify(samples));
    assert.ok(samples.every((s) => s.ms > 0 && s.heapMiB !== null && s.heapMiB > 0 && s.rssMiB > 0));
  }
});

Deno.test("meco_step CLI: an unknown architecture is refused by name", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "lib/bench/meco_step.ts", "--arch", "resnet99", "--steps", "1"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  const err = new TextDecoder().decode(out.stderr);
  assert.ok(err.includes("'resnet99'") && err.includes("resnet34_8x"), err);
});
