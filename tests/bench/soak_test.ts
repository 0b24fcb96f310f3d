import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { soak, verdict } from "../../lib/bench/soak.ts";

await initBackend("wasm");

Deno.test("training loops keep tfjs's tensor count and bytes flat (ResNet-18-8x with BatchNorm + Adam, LeNet-5 + SGD)", () => {
  for (const [model, steps, batch] of [["resnet18_8x", 30, 4], ["lenet5", 120, 32]] as const) {
    const samples = soak({ model, steps, batch, every: 10 });
    assert.equal(samples.length, steps / 10 + 1);
    const v = verdict(samples);
    assert.ok(v.tensorsFlat, `${model}: ${JSON.stringify(samples.map((s) => s.numTensors))}`);
  }
});
