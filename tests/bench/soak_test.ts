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

Deno.test("the soak CLI's summary records its run's provenance", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/soak`;
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "lib/bench/soak.ts",
        "--model",
        "lenet5",
        "--steps",
        "20",
        "--batch",
        "8",
        "--every",
        "10",
        "--out",
        out,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(r.success, new TextDecoder().decode(r.stderr));
    const s = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
    for (
      const f of ["commit", "command", "date", "backend", "onednn", "onednn_isa", "deno", "tfjs", "cpu", "cpus", "load"]
    ) {
      assert.ok(f in s.meta, `meta lacks ${f}: ${JSON.stringify(s.meta)}`);
    }
    assert.match(s.meta.command, /lib\/bench\/soak\.ts --model lenet5 --steps 20/);
    assert.equal(s.meta.steps, 20);
    assert.equal(s.samples.length, 3);
    assert.ok(s.verdict.tensorsFlat);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
