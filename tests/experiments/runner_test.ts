import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../lib/config/mod.ts";
import {
  expectedCells,
  missingCells,
  NothingCachedError,
  parseOnly,
  runExperiment,
} from "../../lib/experiments/runner.ts";
import { groupCells } from "../../lib/experiments/rows.ts";
import { diagnosticsFigure, diagnosticsTable, loadReport, type Stat } from "../../lib/report/mod.ts";
import { tinyConfig, withFreshCache } from "./_tiny.ts";

const YAML = tinyConfig({
  name: "runner_e2e",
  description: "tiny end-to-end run of the runner",
  defenses: [
    "{ type: meco, gamma: 1, q: 1, alpha: 0.01, sigma: median, bound: 0.2, width: 4, epochs: 1, batch_size: 64, " +
    "lr: 0.001, train_subset: 128 }",
  ],
  budget: 1400,
  evalEvery: 700,
  checkpointEvery: 700,
  testSubset: 300,
});

Deno.test("the runner runs every (defense, attack, seed) cell, writes the artifacts, and reuses its cache", async () => {
  await withFreshCache(async (_cache, out) => {
    const loaded = await parseConfig(YAML, "runner_e2e.yaml", "local");
    const logs: string[] = [];
    const s = await runExperiment(loaded, { resultsDir: out, command: "test", log: (m) => logs.push(m) });
    assert.equal(s.rows.length, 2);
    assert.deepEqual(s.rows.map((r) => r.defense), ["undefended", "meco"]);
    for (const r of s.rows) {
      assert.equal(r.attack, "dfme");
      assert.equal(r.seed, 0);
      // 32 · (1 + 1 + 5) = 224 queries per iteration: 6 iterations fit in 1400.
      assert.equal(r.queries, 1344);
      assert.ok(r.target_acc > 0.1 && r.target_acc <= 1, `target acc ${r.target_acc}`);
      assert.ok(r.clone_acc !== null && r.clone_acc >= 0 && r.clone_acc <= 1);
    }
    assert.equal(s.rows[0].l1, 0);
    for (const r of s.rows) {
      assert.equal(r.protocol, "real black box", "a real black box unless the config says otherwise");
    }
    assert.ok(s.rows[1].l1 > 0, "MeCo outputs must differ from the clean ones");
    assert.equal(s.meta.config_hash, loaded.hash);
    assert.equal(s.meta.command, "test");
    assert.match(s.meta.commit, /^([0-9a-f]{40}(\+dirty)?|unknown)$/);
    // Every row records the run that computed it; meta summarises them.
    for (const r of s.rows) {
      const p = r.provenance!;
      assert.equal(p.command, "test");
      assert.equal(p.commit, s.meta.commit);
      assert.equal(p.backend, s.meta.backend);
      assert.ok(Date.parse(p.date) >= Date.parse(s.meta.generated) - 3_600_000, p.date);
      assert.equal(p.deno, Deno.version.deno);
      assert.match(p.tfjs, /^\d+\.\d+\.\d+$/);
      assert.ok(p.cpu.length > 0 && p.cpus >= 1);
      assert.equal(p.load.length, 3);
      if (p.onednn !== null) assert.ok(p.onednn_isa !== null, "oneDNN's ISA is recorded with its version");
    }
    assert.equal(s.meta.provenance?.runs, 1);
    assert.equal(s.meta.provenance?.rows_without, 0);
    assert.deepEqual(s.meta.provenance?.disagree, []);
    const csv = await Deno.readTextFile(`${out}/rows.csv`);
    assert.equal(
      csv.split("\n")[0],
      "defense,attack,seed,target_acc,l1,protocol,clone_acc,queries,minutes,cell," +
        "run_commit,run_date,run_backend,run_onednn_isa,run_cpu,svgd_rms,h_rms",
      "every row's fields are columns (its cell's cache key among them), the MeCo row's displacements too",
    );
    assert.equal(csv.trim().split("\n").length, 3);
    // Every DFME curve point carries the diagnostics; the undefended oracle changes no top-1 answer.
    const curves = JSON.parse(await Deno.readTextFile(`${out}/curves.json`)).curves;
    for (const c of curves) {
      assert.ok(c.points.length > 0);
      for (const pt of c.points) {
        const d = pt.diagnostics;
        assert.ok(d !== undefined, `${c.defense}: a curve point without diagnostics`);
        assert.ok(Math.abs(d.estimateCosine) <= 1 + 1e-6 && Math.abs(d.imageCosine) <= 1 + 1e-6);
        if (c.defense === "undefended") assert.equal(d.top1Changed, 0);
      }
    }
    const rep = await loadReport(out);
    assert.equal(rep.table.length, 2);
    assert.equal(rep.figure.data.length, 2);
    const diag = diagnosticsTable(rep);
    assert.deepEqual(diag.map((r) => r.defense), ["undefended", "meco"]);
    assert.equal((diag[0].top1_changed as Stat).mean, 0);
    assert.equal((diag[0].estimate_cosine as Stat).n, 1);
    assert.equal(diagnosticsFigure(rep).data.length, 2);

    // Second run: every cell comes from the cache, nothing is trained.
    const logs2: string[] = [];
    const s2 = await runExperiment(loaded, { resultsDir: out, command: "test", log: (m) => logs2.push(m) });
    assert.deepEqual(s2.rows, s.rows);
    assert.ok(!logs2.some((l) => /epoch/.test(l)), logs2.join("\n"));
    // Gathering only: same rows.
    const s3 = await runExperiment(loaded, { resultsDir: out, cachedOnly: true, log: () => {} });
    assert.deepEqual(s3.rows, s.rows);
  });
});

Deno.test("--only computes the cells it names and reports the other cached ones; a pattern that selects nothing is refused", async () => {
  await withFreshCache(async (_cache, out) => {
    const loaded = await parseConfig(YAML, "runner_e2e.yaml", "local");
    assert.throws(
      () => parseOnly(loaded, ["meco/maze"]),
      (e: Error) => e instanceof ConfigError && /meco\/maze.*its cells: undefended\/dfme, meco\/dfme/.test(e.message),
    );
    assert.throws(() => parseOnly(loaded, ["meco"]), /expected defense\/attack/);
    const noAttacks = await parseConfig(YAML.replace(/attacks:\n.*\n/, "attacks: []\n"), "no_attacks.yaml", "local");
    assert.equal(noAttacks.config.attacks.length, 0);
    assert.throws(() => parseOnly(noAttacks, ["meco/*"]), /has no attacks: --only selects attack cells/);
    const logs: string[] = [];
    const s = await runExperiment(loaded, { resultsDir: out, only: ["undefended/*"], log: (m) => logs.push(m) });
    assert.deepEqual(s.rows.map((r) => `${r.defense}/${r.attack}`), ["undefended/dfme"]);
    assert.deepEqual(s.meta.missing_cells, ["meco/dfme seed 0"], "the summary names the cell it lacks");
    assert.ok(
      logs.some((l) => /1 of 2 cell\(s\) not in this summary yet: meco\/dfme \(seed 0\)/.test(l)),
      logs.join("\n"),
    );
    assert.ok(!logs.some((l) => /^meco/.test(l)), `MeCo must not be trained:\n${logs.join("\n")}`);
    const s2 = await runExperiment(loaded, { resultsDir: out, only: ["*/dfme"], log: () => {} });
    assert.deepEqual(s2.rows.map((r) => `${r.defense}/${r.attack}`), ["undefended/dfme", "meco/dfme"]);
    assert.deepEqual(s2.rows[0], s.rows[0], "the cached cell is read, not recomputed");
    assert.deepEqual(s2.meta.missing_cells, []);
  });
});

Deno.test("--cached with nothing cached is an error and writes nothing", async () => {
  await withFreshCache(async (_cache, out) => {
    const loaded = await parseConfig(YAML, "runner_e2e.yaml", "local");
    await assert.rejects(
      () => runExperiment(loaded, { resultsDir: out, cachedOnly: true, log: () => {} }),
      (e: Error) =>
        e instanceof NothingCachedError && /runner_e2e \(profile local\): no cell is cached/.test(e.message),
    );
    assert.deepEqual([...Deno.readDirSync(out)], [], "no summary is written");
  });
});

Deno.test("DFME's diagnostics draw from their own defense instance: a random defense answers the attack alike however often they run", async () => {
  await withFreshCache(async (cache) => {
    // eval_every sets how often the diagnostics query the defense (every evaluation point); it changes nothing else.
    const yaml = (every: number) =>
      YAML.replace(
        /defenses:\n[\s\S]*?attacks:/,
        "defenses:\n  - { type: randp, eps: 1.0, argmax_preserving: false }\nattacks:",
      ).replace("eval_every: 700, checkpoint_every: 700", `eval_every: ${every}, checkpoint_every: 1400`);
    const rows = [];
    for (const every of [224, 1400]) {
      const loaded = await parseConfig(yaml(every), "runner_e2e.yaml", "local");
      const out = await Deno.makeTempDir({ prefix: "meco-results-" });
      try {
        const s = await runExperiment(loaded, { resultsDir: out, log: () => {} });
        const curves = JSON.parse(await Deno.readTextFile(`${out}/curves.json`)).curves;
        rows.push({ clone: s.rows[0].clone_acc, points: curves[0].points.length });
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    }
    assert.equal(rows[0].points, 6, "diagnostics at every iteration");
    assert.equal(rows[1].points, 1);
    assert.equal(rows[0].clone, rows[1].clone, "the attack saw the same answers");
    // The clones' final weights, bit for bit (each attack cell keeps its last checkpoint).
    const weights = [...Deno.readDirSync(`${cache}/attack`)].filter((e) => e.isDirectory).map((e) => {
      const dir = `${cache}/attack/${e.name}/checkpoint/latest/clone`;
      // The weight bytes only: the topology's layer names carry tfjs's per-process counters.
      return [...Deno.readDirSync(dir)].map((f) => f.name).filter((f) => f.endsWith(".bin")).sort()
        .map((f) => Deno.readFileSync(`${dir}/${f}`));
    });
    assert.equal(weights.length, 2);
    assert.ok(weights[0].length > 0, "the checkpoint holds weight files");
    const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);
    assert.ok(
      weights[0].length === weights[1].length && weights[0].every((w, i) => same(w, weights[1][i])),
      "the clones trained on the same answers (their weights differ)",
    );
  });
});

Deno.test("the config's cells, and those a summary's rows lack, grouped by label", async () => {
  const loaded = await parseConfig(YAML, "runner_e2e.yaml", "local");
  assert.deepEqual(expectedCells(loaded.config), ["undefended/dfme seed 0", "meco/dfme seed 0"]);
  const rows = [{ defense: "meco", attack: "dfme", seed: 0 }];
  assert.deepEqual(missingCells(loaded.config, rows), ["undefended/dfme seed 0"]);
  const noAttacks = await parseConfig(YAML.replace(/attacks:\n.*\n/, "attacks: []\n"), "no_attacks.yaml", "local");
  assert.deepEqual(expectedCells(noAttacks.config), ["undefended/none seed 0", "meco/none seed 0"]);
  assert.equal(
    groupCells(["a/b seed 0", "c/d seed 2", "a/b seed 1"]),
    "a/b (seeds 0, 1), c/d (seed 2)",
  );
});
