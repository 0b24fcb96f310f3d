import assert from "node:assert/strict";
import { parse } from "yaml";
import { loadConfig, PROFILES } from "../../lib/config/mod.ts";

const CONFIG_DIR = new URL("../../configs/", import.meta.url);

async function configFiles(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(CONFIG_DIR)) {
    if (!e.isFile || !/\.ya?ml$/.test(e.name)) continue;
    // Experiment configs only: the server's YAML files (no victim, no defenses) have their own schema and tests.
    const doc = parse(await Deno.readTextFile(new URL(e.name, CONFIG_DIR)));
    if (typeof doc === "object" && doc !== null && "victim" in doc && "defenses" in doc) names.push(e.name);
  }
  return names.sort();
}

Deno.test("every file in configs/ loads at every profile", async () => {
  const files = await configFiles();
  assert.ok(files.length > 0, "configs/ holds no YAML files");
  for (const f of files) {
    const hashes = new Set<string>();
    for (const p of PROFILES) {
      const loaded = await loadConfig(new URL(f, CONFIG_DIR), p);
      assert.equal(loaded.profile, p);
      assert.equal(
        loaded.config.name,
        f.replace(/\.ya?ml$/, ""),
        `${f}: name should match the file name`,
      );
      hashes.add(loaded.hash);
    }
    assert.equal(hashes.size, PROFILES.length, `${f}: profiles should differ`);
    const smoke = await loadConfig(new URL(f, CONFIG_DIR), "smoke");
    assert.equal(smoke.config.seeds.length, 1, `${f}: smoke runs one seed`);
  }
});

Deno.test("mnist_dfme follows the paper: 2M DFME queries, LeNet-5, MeCo with median bandwidth", async () => {
  const url = new URL("mnist_dfme.yaml", CONFIG_DIR);
  const paper = (await loadConfig(url, "paper")).config;
  const local = (await loadConfig(url, "local")).config;
  const smoke = (await loadConfig(url, "smoke")).config;
  assert.equal(paper.dataset.name, "mnist");
  assert.equal(paper.victim.arch, "lenet5");
  assert.deepEqual(paper.defenses.map((d) => d.type), ["none", "meco", "meco"]);
  assert.deepEqual(paper.defenses.map((d) => (d.type === "meco" ? d.variant : "-")), ["-", "paper", "official"]);
  const meco = paper.defenses[1];
  assert.ok(meco.type === "meco" && meco.sigma === "median" && meco.q > 0);
  for (const [cfg, width] of [[paper, 64], [local, 16]] as const) {
    const a = cfg.attacks[0];
    assert.ok(a.type === "dfme");
    assert.equal(a.budget, 2_000_000);
    assert.equal(a.gen_width, width);
    assert.equal(a.gen_lr, 3e-3); // the generator must move enough to beat a frozen one (tests/attacks/dfme_test.ts)
    assert.equal(a.gen_output_bn, "learned");
  }
  assert.ok(smoke.attacks[0].budget <= 10_000);
  assert.equal(smoke.victim.train.epochs, 1);
});
