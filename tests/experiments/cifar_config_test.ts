import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig, PROFILES } from "../../lib/config/mod.ts";
import { DataError } from "../../lib/data/mod.ts";
import { runExperiment } from "../../lib/experiments/runner.ts";

const CONFIGS = new URL("../../configs/", import.meta.url);
const CIFAR_CONFIGS = [
  "cifar10_score.yaml",
  "cifar100_score.yaml",
  "cifar10_decision.yaml",
  "cifar100_decision.yaml",
  "cifar10_clone_archs.yaml",
  "cifar10_googlenet.yaml",
];

async function withEnv<T>(vars: Record<string, string>, f: () => Promise<T>): Promise<T> {
  const old = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
  try {
    return await f();
  } finally {
    for (const [k, v] of Object.entries(old)) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
}

Deno.test("a configured CIFAR run on a machine without the data fails saying where to put it and how to download", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "meco-nodata-" });
  const cacheDir = await Deno.makeTempDir({ prefix: "meco-cache-" });
  const out = join(dataDir, "results");
  try {
    await withEnv({ MECO_DATA_DIR: dataDir, MECO_CACHE_DIR: cacheDir }, async () => {
      for (
        const [file, folder, archive] of [
          ["cifar10_score.yaml", "cifar-10-batches-bin", "cifar-10-binary.tar.gz"],
          ["cifar100_decision.yaml", "cifar-100-binary", "cifar-100-binary.tar.gz"],
        ]
      ) {
        // download off: what a machine without network sees, without touching the network here
        const loaded = await loadConfig(new URL(file, CONFIGS), "smoke", { overrides: ["dataset.download=false"] });
        const err = await runExperiment(loaded, { resultsDir: out, command: "test", log: () => {} }).then(
          () => undefined,
          (e) => e,
        );
        assert.ok(err instanceof DataError, `${file}: expected a DataError, got ${err}`);
        assert.equal(err.fault, "not_available");
        for (const needle of [join(dataDir, folder), archive, "download: true", "MECO_DATA_DIR", "cs.toronto.edu"]) {
          assert.ok(err.message.includes(needle), `${file}: message lacks '${needle}': ${err.message}`);
        }
      }
    });
    // nothing half-written: no results, no data files, no cached cells
    assert.equal(await Deno.stat(out).then(() => true, () => false), false);
    assert.deepEqual([...Deno.readDirSync(dataDir)], []);
    assert.deepEqual([...Deno.readDirSync(cacheDir)], []);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("a configured MiniImageNet run without the pickled splits says where to put them", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "meco-nodata-" });
  const cacheDir = await Deno.makeTempDir({ prefix: "meco-cache-" });
  try {
    await withEnv({ MECO_DATA_DIR: dataDir, MECO_CACHE_DIR: cacheDir }, async () => {
      const loaded = await loadConfig(new URL("miniimagenet_dfme.yaml", CONFIGS), "smoke");
      assert.equal(loaded.config.dataset.image_size, 32);
      const err = await runExperiment(loaded, { resultsDir: join(dataDir, "results"), command: "test", log: () => {} })
        .then(() => undefined, (e) => e);
      assert.ok(err instanceof DataError, `expected a DataError, got ${err}`);
      assert.equal(err.fault, "not_available");
      for (const needle of [join(dataDir, "miniimagenet"), "mini-imagenet-cache-train.pkl", "MECO_DATA_DIR"]) {
        assert.ok(err.message.includes(needle), `message lacks '${needle}': ${err.message}`);
      }
    });
    assert.deepEqual([...Deno.readDirSync(dataDir)], []);
    assert.deepEqual([...Deno.readDirSync(cacheDir)], []);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("CIFAR configs follow the paper at the paper profile: budgets, ResNet-34-8x victim recipe, full width", async () => {
  const budgets: Record<string, number> = {
    cifar10_score: 20_000_000,
    cifar100_score: 200_000_000,
    cifar10_decision: 8_000_000,
    cifar100_decision: 10_000_000,
    cifar10_clone_archs: 20_000_000,
    cifar10_googlenet: 20_000_000,
  };
  for (const f of CIFAR_CONFIGS) {
    const paper = (await loadConfig(new URL(f, CONFIGS), "paper")).config;
    const name = f.replace(".yaml", "");
    assert.ok(paper.dataset.name === "cifar10" || paper.dataset.name === "cifar100", f);
    assert.equal(paper.victim.arch, name === "cifar10_googlenet" ? "googlenet" : "resnet34_8x", f);
    assert.equal(paper.victim.width, 1, f);
    const t = paper.victim.train;
    assert.deepEqual(
      [t.epochs, t.optimizer, t.lr, t.momentum, t.weight_decay, t.lr_milestones, t.lr_gamma],
      [200, "sgd", 0.1, 0.9, 5e-4, [0.4, 0.6, 0.8], 0.1],
      f,
    );
    assert.deepEqual(t.augment, { crop_padding: 4, flip: true }, f);
    assert.ok(paper.attacks.length > 0, f);
    for (const a of paper.attacks) {
      assert.equal(a.budget, budgets[name], `${f}: ${a.name ?? a.type}`);
      assert.equal(a.clone_width ?? 1, 1, f);
    }
    assert.ok(paper.defenses.some((d) => d.type === "meco") && paper.defenses.some((d) => d.type === "none"), f);
    if (name.endsWith("_decision")) {
      assert.ok(paper.attacks.every((a) => a.type === "dfms_hl" || (a.type === "dfme" && a.label === "hard")), f);
    }
    for (const p of PROFILES.filter((p) => p !== "paper")) {
      const c = (await loadConfig(new URL(f, CONFIGS), p)).config;
      assert.ok(c.victim.width < 1, `${f} ${p}: models are width-scaled`);
      assert.ok(c.attacks.every((a) => a.budget <= 500_000), `${f} ${p}: budgets fit the profile`);
    }
  }
  const clones = (await loadConfig(new URL("cifar10_clone_archs.yaml", CONFIGS), "paper")).config.attacks;
  assert.deepEqual(clones.map((a) => a.clone_arch), ["resnet18_8x", "mobilenet_v2", "densenet121"]);
});
