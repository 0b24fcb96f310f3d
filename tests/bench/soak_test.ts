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

Deno.test("the soak's RSS growth compares the floors of the second and last quarters (GC swings are not growth)", () => {
  const at = (rss: number[]) =>
    rss.map((rssMiB, i) => ({ step: i, numTensors: 5, numBytes: 10, rssMiB, jsHeapMiB: 0, msPerStep: 1 }));
  // V8 warming up, then a sawtooth between 320 and 410: no growth.
  assert.equal(
    verdict(at([240, 270, 320, 360, 400, 323, 350, 390, 410, 329, 360, 400, 325, 380, 410, 330])).rssGrowthMiB,
    2,
  );
  // A leak: the floor climbs 10 MiB a sample.
  assert.equal(verdict(at([240, 250, 260, 270, 280, 290, 300, 310, 320, 330, 340, 350])).rssGrowthMiB, 60);
  // Too few samples for quarters still give a number.
  assert.equal(verdict(at([240, 250])).rssGrowthMiB, 0);
  assert.equal(verdict(at([240])).rssGrowthMiB, 0);
  assert.equal(
    verdict([{ step: 1, numTensors: 5, numBytes: 10, rssMiB: 1, jsHeapMiB: 0, msPerStep: 0 }, {
      step: 2,
      numTensors: 6,
      numBytes: 10,
      rssMiB: 1,
      jsHeapMiB: 0,
      msPerStep: 0,
    }]).tensorsFlat,
    false,
  );
});
