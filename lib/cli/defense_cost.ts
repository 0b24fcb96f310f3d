/**
 * `deno task cost [config.yaml] [--profile paper|local|smoke] [--set path=value ...]`:
 * the deployment-cost experiment (default configs/defense_cost.yaml, local
 * profile) → results/defense_cost/summary.json and rows.csv.
 *
 * @module
 */
import { ConfigError, loadConfig, PROFILES } from "../config/mod.ts";
import { runDefenseCost } from "../bench/cost_report.ts";
import { parseCli } from "./args.ts";

const CLI = {
  usage: "deno task cost [config.yaml] [--profile paper|local|smoke] [--set path=value]...",
  description: "The deployment-cost experiment of config.yaml (default configs/defense_cost.yaml) → " +
    "results/defense_cost/summary.json and rows.csv.",
  positionals: { name: "[config.yaml]", max: 1 },
  options: {
    profile: { type: "choice", choices: PROFILES, default: "local", help: "budget profile" },
    set: { type: "string", multiple: true, value: "path=value", help: "override a config field" },
  },
} as const;

if (import.meta.main) {
  const { values, positionals } = parseCli(CLI);
  const path = positionals[0] ?? "configs/defense_cost.yaml";
  try {
    const loaded = await loadConfig(path, values.profile, { overrides: values.set });
    await runDefenseCost(loaded);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      Deno.exit(2);
    }
    throw e;
  }
}
