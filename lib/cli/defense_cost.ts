/**
 * `deno task cost [config.yaml] [--profile paper|local|smoke] [--set path=value ...]`:
 * the deployment-cost experiment (default configs/defense_cost.yaml, local
 * profile) → results/defense_cost/summary.json and rows.csv.
 *
 * @module
 */
import { ConfigError, loadConfig, type ProfileName } from "../config/mod.ts";
import { runDefenseCost } from "../bench/cost_report.ts";

if (import.meta.main) {
  const args = [...Deno.args];
  let path = "configs/defense_cost.yaml";
  let profile = "local";
  const sets: string[] = [];
  while (args.length > 0) {
    const a = args.shift()!;
    if (a === "--profile") profile = args.shift() ?? "";
    else if (a === "--set") sets.push(args.shift() ?? "");
    else if (a.startsWith("--")) {
      console.error(
        `error: unknown option ${a}\nusage: deno task cost [config.yaml] [--profile P] [--set path=value]...`,
      );
      Deno.exit(2);
    } else path = a;
  }
  try {
    const loaded = await loadConfig(path, profile as ProfileName, { overrides: sets });
    await runDefenseCost(loaded);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      Deno.exit(2);
    }
    throw e;
  }
}
