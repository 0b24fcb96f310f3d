/**
 * `deno task repro <config.yaml> [--profile paper|local|smoke] [--seeds 0,1]
 * [--set path=value ...] [--only defense/attack ...] [--cached]`: runs (or
 * resumes) an experiment through the runner and writes results/<name>/.
 * `--cached` only gathers cached cells; `--only` computes the cells it names
 * (e.g. `--only undefended/dfme` across every seed before `--only meco/*`) and
 * reports the other cells that are cached.
 *
 * @module
 */
import { onednnAdvice } from "../system/optional_parts.ts";
import { ConfigError, loadConfig, PROFILES } from "../config/mod.ts";
import { resultsDirFor } from "../experiments/paths.ts";
import { NothingCachedError, runExperiment } from "../experiments/runner.ts";
import { parseCli } from "./args.ts";

const CLI = {
  usage: "deno task repro <config.yaml> [--profile paper|local|smoke] [--seeds 0,1] [--set path=value]... " +
    "[--only defense/attack]... [--cached]",
  description: "Runs (or resumes) an experiment through the runner and writes results/<name>/.",
  positionals: { name: "<config.yaml>", min: 1, max: 1 },
  options: {
    profile: { type: "choice", choices: PROFILES, help: "budget profile; default $MECO_PROFILE, else local" },
    seeds: { type: "integers", min: 0, help: "seeds to run; default the config's" },
    set: { type: "string", multiple: true, value: "path=value", help: "override a config field" },
    cached: { type: "boolean", help: "only gather cached cells; train and attack nothing" },
    only: {
      type: "string",
      multiple: true,
      value: "defense/attack",
      help: "compute only these cells (labels; * for any, e.g. meco/*); the others are read from the cache",
    },
  },
} as const;

if (import.meta.main) {
  const { values, positionals } = parseCli(CLI);
  const path = positionals[0];
  try {
    const loaded = await loadConfig(path, values.profile, { overrides: values.set });
    console.log(`config ${path} (profile ${loaded.profile}, hash ${loaded.hash.slice(0, 12)})`);
    const advice = onednnAdvice();
    if (advice !== "") console.log(advice);
    const summary = await runExperiment(loaded, { seeds: values.seeds, cachedOnly: values.cached, only: values.only });
    console.table(summary.rows);
    console.log(`wrote ${resultsDirFor(loaded)}/summary.json`);
  } catch (e) {
    if (e instanceof ConfigError || e instanceof NothingCachedError) {
      console.error(e.message);
      Deno.exit(1);
    }
    throw e;
  }
}
