import assert from "node:assert/strict";
import { parseConfig } from "../../lib/config/mod.ts";
import { ArchiveError } from "../../lib/experiments/archive.ts";
import { runExperiment } from "../../lib/experiments/runner.ts";
import type { Summary } from "../../lib/experiments/rows.ts";
import { tinyConfig, withFreshCache } from "./_tiny.ts";

const YAML = tinyConfig({
  name: "archive_e2e",
  description: "the committed results restore their finished cells on another machine",
  budget: 700,
  evalEvery: 350,
  checkpointEvery: 700,
  testSubset: 200,
});

const readSummary = (dir: string) => JSON.parse(Deno.readTextFileSync(`${dir}/summary.json`)) as Summary;
const writeSummary = (dir: string, s: Summary) => Deno.writeTextFileSync(`${dir}/summary.json`, JSON.stringify(s));
const result = (s: Summary) => s.rows.map((r) => [r.defense, r.attack, r.seed, r.clone_acc, r.queries, r.target_acc]);

Deno.test("a fresh cache regathers and resumes from the committed results without recomputing their cells", async () => {
  const out = await Deno.makeTempDir({ prefix: "meco-results-" });
  try {
    const loaded = await parseConfig(YAML, "archive_e2e.yaml", "local");
    const first = await withFreshCache(() => runExperiment(loaded, { resultsDir: out, log: () => {} }));
    assert.equal(first.rows.length, 1);
    assert.match(first.rows[0].cell!, /^attack\/[0-9a-f]{16}$/, "every row names its cell's cache key");
    assert.match(Deno.readTextFileSync(`${out}/rows.csv`).split("\n")[0], /\bcell\b/);
    const curves = Deno.readTextFileSync(`${out}/curves.json`);

    // Another machine: an empty cache, the same results/. --cached gathers the stored row.
    await withFreshCache(async (cache) => {
      const logs: string[] = [];
      const s = await runExperiment(loaded, { resultsDir: out, cachedOnly: true, log: (m) => logs.push(m) });
      assert.deepEqual(result(s), result(first));
      assert.ok(logs.some((l) => /1 finished cell\(s\) of .* restored into the cache/.test(l)), logs.join("\n"));
      const stored = JSON.parse(Deno.readTextFileSync(`${cache}/${first.rows[0].cell}/row.json`));
      assert.deepEqual(stored.curve, JSON.parse(curves).curves[0].points, "the cell gets its curve back");
      assert.deepEqual(JSON.parse(Deno.readTextFileSync(`${out}/curves.json`)).curves, JSON.parse(curves).curves);
    });

    // A full run on an empty cache computes nothing the results hold: no victim is even trained.
    await withFreshCache(async () => {
      const logs: string[] = [];
      const s = await runExperiment(loaded, { resultsDir: out, log: (m) => logs.push(m) });
      assert.deepEqual(result(s), result(first));
      assert.ok(!logs.some((l) => /victim seed 0/.test(l)), logs.join("\n"));
    });

    // Rows written before keys were recorded: keyed from the config when the summary is of exactly this config.
    const keyed = readSummary(out);
    writeSummary(out, { ...keyed, rows: keyed.rows.map(({ cell: _c, ...r }) => r) });
    await withFreshCache(async (cache) => {
      const s = await runExperiment(loaded, { resultsDir: out, cachedOnly: true, log: () => {} });
      assert.deepEqual(result(s), result(first));
      assert.ok(Deno.statSync(`${cache}/${first.rows[0].cell}/row.json`).isFile);
    });
    // ... and left out (said why) when the summary is of another config.
    writeSummary(out, {
      ...keyed,
      meta: { ...keyed.meta, config_hash: "0".repeat(64) },
      rows: keyed.rows.map(({ cell: _c, ...r }) => r),
    });
    await withFreshCache(async () => {
      const logs: string[] = [];
      await assert.rejects(() =>
        runExperiment(loaded, { resultsDir: out, cachedOnly: true, log: (m) => logs.push(m) })
      );
      assert.ok(
        logs.some((l) => /1 stored row\(s\) .* not restored \(undefended\/dfme seed 0: no cell key/.test(l)),
        logs.join("\n"),
      );
    });
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("stored results that cannot be read are refused by name, and no key writes outside the cache", async () => {
  const out = await Deno.makeTempDir({ prefix: "meco-results-" });
  try {
    const loaded = await parseConfig(YAML, "archive_e2e.yaml", "local");
    Deno.writeTextFileSync(`${out}/summary.json`, "{ not json");
    await withFreshCache(async () => {
      await assert.rejects(
        () => runExperiment(loaded, { resultsDir: out, cachedOnly: true, log: () => {} }),
        (e: Error) => e instanceof ArchiveError && e.message.startsWith(`${out}/summary.json: not readable as JSON`),
      );
    });
    const row = { defense: "undefended", attack: "dfme", seed: 0, queries: 672, cell: "attack/../../escape" };
    writeSummary(out, { meta: { config_hash: loaded.hash, cache_version: 1 }, rows: [row] } as unknown as Summary);
    Deno.writeTextFileSync(`${out}/curves.json`, JSON.stringify({ curves: [{ ...row, points: [] }] }));
    await withFreshCache(async (cache) => {
      await assert.rejects(
        () => runExperiment(loaded, { resultsDir: out, cachedOnly: true, log: () => {} }),
        (e: Error) =>
          e instanceof ArchiveError && /rows\[0\]: cell "attack\/..\/..\/escape" is not a cache key/.test(e.message),
      );
      assert.deepEqual([...Deno.readDirSync(cache)], [], "nothing written");
    });
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
