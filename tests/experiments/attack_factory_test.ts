import assert from "node:assert/strict";
import { AdaptiveAttack, DfmeAttack, DfmsHlAttack, MazeAttack } from "../../lib/attacks/mod.ts";
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
