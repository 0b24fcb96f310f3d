import assert from "node:assert/strict";
import { loadConfig, PROFILES } from "../../lib/config/mod.ts";

const dir = new URL("../../configs/", import.meta.url);

Deno.test("mnist_data_based shares mnist_dfme's dataset, victim, MeCo defense and eval at every profile (cached cells)", async () => {
  for (const p of PROFILES) {
    const dfme = (await loadConfig(new URL("mnist_dfme.yaml", dir), p)).config;
    const data = (await loadConfig(new URL("mnist_data_based.yaml", dir), p)).config;
    for (const key of ["dataset", "victim", "eval", "seeds"] as const) {
      assert.deepEqual(data[key], dfme[key], `${p}: ${key}`);
    }
    assert.deepEqual(data.defenses.map((d) => d.type), ["none", "meco"]);
    for (const d of data.defenses) {
      assert.ok(dfme.defenses.some((e) => JSON.stringify(e) === JSON.stringify(d)), `${p}: ${JSON.stringify(d)}`);
    }
  }
});

Deno.test("mnist_data_based follows the papers: Fashion-MNIST Knockoff queries, JBDA with 150 seeds and 6 rounds", async () => {
  const paper = (await loadConfig(new URL("mnist_data_based.yaml", dir), "paper")).config;
  const byName = Object.fromEntries(paper.attacks.map((a) => [a.name ?? a.type, a]));
  assert.deepEqual(Object.keys(byName), ["knockoff_random", "knockoff_adaptive", "jbda"]);
  const r = byName.knockoff_random, ad = byName.knockoff_adaptive, j = byName.jbda;
  assert.ok(r.type === "knockoff" && r.strategy === "random" && r.surrogate_dataset === "fashion_mnist");
  assert.ok(r.epochs === 100 && r.clone_lr === 0.01 && r.clone_momentum === 0.5 && r.label === "soft");
  assert.ok(ad.type === "knockoff" && ad.strategy === "adaptive" && ad.reward === "all");
  assert.ok(j.type === "jbda" && j.seed_size === 150 && j.rounds === 6 && j.label === "hard");
  assert.equal(j.budget, 150 * 2 ** 5);
});
