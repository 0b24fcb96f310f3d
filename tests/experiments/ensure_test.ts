import assert from "node:assert/strict";
import { ensureResults, estimateMinutes } from "../../lib/experiments/ensure.ts";
import { loadConfig } from "../../lib/config/mod.ts";
import { repoPath } from "../../lib/experiments/paths.ts";

Deno.test("ensureResults computes nothing unless asked: it says what is missing, how long, and the command", async () => {
  const dir = await Deno.makeTempDir({ prefix: "meco-ensure-" });
  const before = Deno.env.get("MECO_RECOMPUTE");
  Deno.env.delete("MECO_RECOMPUTE");
  try {
    const e = await ensureResults("mnist_utility.yaml", "smoke", undefined, { resultsDir: dir });
    assert.equal(e.recomputed, false);
    assert.ok(e.pending !== undefined, "a pending computation is described");
    assert.match(e.pending.what, /no stored results/);
    assert.equal(e.pending.command, "deno task repro configs/mnist_utility.yaml --profile smoke");
    assert.equal(e.pending.rows, e.loaded.config.defenses.length * e.loaded.config.seeds.length);
    assert.match(e.missing!, /Nothing computed/);
    assert.match(e.missing!, /MECO_RECOMPUTE=1/);
    assert.ok(!e.missing!.includes(repoPath("")), "no absolute machine path in the message");
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing written");
    // A stored summary of another config hash is stale, and still nothing is computed.
    await Deno.writeTextFile(
      `${dir}/summary.json`,
      JSON.stringify({ meta: { config_hash: "0123456789abcdef", cache_version: -1, seeds: [0] }, rows: [] }),
    );
    const stale = await ensureResults("mnist_utility.yaml", "smoke", undefined, { resultsDir: dir });
    assert.match(stale.pending!.what, /another config or code version \(config hash 0123456789ab/);
  } finally {
    if (before !== undefined) Deno.env.set("MECO_RECOMPUTE", before);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("estimateMinutes: budget × median minutes per query of stored rows of the same attack", async () => {
  const root = await Deno.makeTempDir({ prefix: "meco-est-" });
  try {
    await Deno.mkdir(`${root}/a`);
    const rows = [
      { defense: "undefended", attack: "dfme", seed: 0, queries: 1000, minutes: 1 },
      { defense: "meco", attack: "dfme", seed: 0, queries: 1000, minutes: 3 },
      { defense: "meco", attack: "dfme", seed: 1, queries: 1000, minutes: 2 },
      { defense: "meco", attack: "maze", seed: 0, queries: 100, minutes: 10 },
    ];
    await Deno.writeTextFile(`${root}/a/summary.json`, JSON.stringify({ meta: {}, rows }));
    const loaded = await loadConfig(repoPath("configs/mnist_dfme.yaml"), "smoke");
    const cfg = loaded.config;
    const est = await estimateMinutes(cfg, 2, root);
    assert.deepEqual(cfg.attacks.map((a) => a.name ?? a.type), ["dfme"]);
    // The dfme rows' median is 2 minutes per 1000 queries (the maze row does not count).
    const expected = cfg.attacks[0].budget * (2 / 1000) * cfg.defenses.length * 2;
    assert.ok(Math.abs(est.minutes! - expected) < 1e-9, `${est.minutes} vs ${expected}`);
    assert.match(est.basis, /median minutes per query of 4 stored rows/);
    const none = await estimateMinutes(cfg, 2, `${root}/absent`);
    assert.equal(none.minutes, undefined);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
