import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import { perturbationNet } from "../../lib/models/perturbation.ts";
import { CheckpointError, loadModel, loadTensors, saveModel, saveTensors } from "../../lib/train/checkpoint.ts";

await initBackend("wasm");

Deno.test("a model saved to disk loads back with identical weights and outputs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const model of [lenet5({ seed: 3 }), perturbationNet({ imageShape: [28, 28, 1], width: 4, bound: 0.2, seed: 1 })]
    ) {
      await saveModel(model, `${dir}/${model.name}`);
      const back = await loadModel(`${dir}/${model.name}`);
      const a = model.getWeights(), b = back.getWeights();
      assert.equal(a.length, b.length);
      a.forEach((w, i) => assert.deepEqual(Array.from(w.dataSync()), Array.from(b[i].dataSync())));
      const entries = [...Deno.readDirSync(dir)].map((e) => e.name);
      assert.ok(entries.every((n) => !n.includes(".tmp-")), `leftovers: ${entries}`);
      model.dispose();
      back.dispose();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a truncated or missing checkpoint is a CheckpointError naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = lenet5({ seed: 0 });
    await saveModel(m, `${dir}/m`);
    m.dispose();
    const bin = await Deno.readFile(`${dir}/m/weights.bin`);
    await Deno.writeFile(`${dir}/m/weights.bin`, bin.subarray(0, bin.length - 8));
    await assert.rejects(
      () => loadModel(`${dir}/m`),
      (e: unknown) => e instanceof CheckpointError && /weights\.bin/.test(e.message),
    );
    await assert.rejects(
      () => loadModel(`${dir}/none`),
      (e: unknown) => e instanceof CheckpointError && /missing/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("named tensors round-trip with their metadata", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await saveTensors(`${dir}/t`, { a: tf.tensor([1.5, -2]), b: tf.tensor([[7]], [1, 1], "int32") }, { step: 4 });
    const { tensors, meta } = await loadTensors<{ step: number }>(`${dir}/t`);
    assert.deepEqual(meta, { step: 4 });
    assert.deepEqual(Array.from(tensors.a.dataSync()), [1.5, -2]);
    assert.equal(tensors.b.dtype, "int32");
    assert.deepEqual(tensors.b.shape, [1, 1]);
    tf.dispose(Object.values(tensors));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
