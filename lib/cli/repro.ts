/**
 * `deno task repro <config.yaml> [--profile paper|local|smoke] [--seeds 0,1]
 * [--set path=value ...] [--cached]`: runs (or resumes) an experiment through
 * the runner and writes results/<name>/. `--cached` only gathers cached cells.
 *
 * @module
 */
import { ConfigError, loadConfig, type ProfileName } from "../config/mod.ts";
import { resultsDirFor } from "../experiments/paths.ts";
import { runExperiment } from "../experiments/runner.ts";

function usage(msg?: string): never {
  if (msg) console.error(`error: ${msg}`);
  console.error(
    "usage: deno task repro <config.yaml> [--profile paper|local|smoke] [--seeds 0,1] [--set path=value]... [--cached]",
  );
  Deno.exit(2);
}

if (import.meta.main) {
  const args = [...Deno.args];
  let path: string | undefined;
  let profile: string | undefined;
  let seeds: number[] | undefined;
  let cachedOnly = false;
  const sets: string[] = [];
  while (args.length > 0) {
    const a = args.shift()!;
    if (a === "--profile") profile = args.shift() ?? usage("--profile needs a value");
    else if (a === "--seeds") {
      const v = args.shift() ?? usage("--seeds needs a value");
      seeds = v.split(",").map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 0) usage(`--seeds: '${s}' is not a non-negative integer`);
        return n;
      });
    } else if (a === "--set") sets.push(args.shift() ?? usage("--set needs path=value"));
    else if (a === "--cached") cachedOnly = true;
    else if (a.startsWith("--")) usage(`unknown option ${a}`);
    else if (path === undefined) path = a;
    else usage(`unexpected argument ${a}`);
  }
  if (path === undefined) usage("no config given");
  try {
    const loaded = await loadConfig(path, profile as ProfileName | undefined, { overrides: sets });
    console.log(`config ${path} (profile ${loaded.profile}, hash ${loaded.hash.slice(0, 12)})`);
    const summary = await runExperiment(loaded, { seeds, cachedOnly });
    console.table(summary.rows);
    console.log(`wrote ${resultsDirFor(loaded)}/summary.json`);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      Deno.exit(1);
    }
    throw e;
  }
}
