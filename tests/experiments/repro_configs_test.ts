/**
 * `deno task repro configs/<name>.yaml --profile smoke` for every experiment
 * config in configs/ (new configs are picked up by themselves; YAML files of
 * other tools, e.g. the server's, which have no victim and defenses, are
 * left out). Configs share one cell
 * cache, as on a real machine, so a victim common to several is trained once.
 * A config whose dataset is not on this machine (CIFAR without network,
 * MiniImageNet) is reported and ignored rather than failed.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config/mod.ts";
import { missingData } from "../../lib/experiments/data.ts";
import { attacksAgainst } from "../../lib/experiments/runner.ts";
import { parse } from "yaml";

const root = new URL("../../", import.meta.url).pathname;
function isExperiment(file: string): boolean {
  const doc = parse(Deno.readTextFileSync(`${root}configs/${file}`));
  return typeof doc === "object" && doc !== null && "victim" in doc && "defenses" in doc;
}

const configs = [...Deno.readDirSync(`${root}configs`)]
  .filter((e) => e.isFile && e.name.endsWith(".yaml") && isExperiment(e.name))
  .map((e) => e.name)
  .sort();

// One cache for this file's tests, made before the first and removed after the last (whichever run).
let cache = "";
Deno.test.beforeAll(async () => {
  cache = await Deno.makeTempDir({ prefix: "meco-repro-cache-" });
});
Deno.test.afterAll(async () => {
  await Deno.remove(cache, { recursive: true });
});

for (const file of configs) {
  const loaded = await loadConfig(`${root}configs/${file}`, "smoke");
  const missing = await missingData(loaded.config);
  if (missing !== undefined) console.warn(`repro ${file} ignored: ${missing}`);
  Deno.test({
    name: `deno task repro configs/${file} --profile smoke${missing ? " (data missing)" : ""}`,
    ignore: missing !== undefined,
    fn: async () => {
      const out = await Deno.makeTempDir({ prefix: "meco-repro-out-" });
      try {
        const t0 = performance.now();
        const res = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "lib/cli/repro.ts",
            `configs/${file}`,
            "--profile",
            "smoke",
            "--set",
            `output.dir=${out}`,
          ],
          cwd: root,
          env: { MECO_CACHE_DIR: cache },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const log = new TextDecoder().decode(res.stdout) + new TextDecoder().decode(res.stderr);
        assert.ok(res.success, `repro ${file} failed:\n${log.slice(-3000)}`);
        const summary = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
        assert.equal(summary.meta.name, loaded.config.name);
        assert.equal(summary.meta.profile, "smoke");
        const expected = await loadConfig(`${root}configs/${file}`, "smoke", { overrides: [`output.dir=${out}`] });
        assert.equal(summary.meta.config_hash, expected.hash);
        // Every attack against every defense its `defenses:` list allows (all when absent); one row per defense
        // without attacks.
        const perSeed = loaded.config.attacks.length === 0
          ? loaded.config.defenses.length
          : loaded.config.defenses.reduce((n, d) => n + attacksAgainst(loaded.config, d).length, 0);
        assert.equal(summary.rows.length, perSeed * loaded.config.seeds.length, log.slice(-2000));
        const csv = (await Deno.readTextFile(`${out}/rows.csv`)).trim().split("\n");
        assert.equal(csv.length, summary.rows.length + 1);
        console.log(`${file}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    },
  });
}
