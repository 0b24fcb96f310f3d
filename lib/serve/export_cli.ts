/**
 * `deno task export-model <experiment.yaml> --out DIR [--profile P] [--seed N] [--meco LABEL | --no-meco]`:
 * writes a model bundle for `deno task serve` from the runner's cache of that
 * experiment, training the victim (and MeCo nets) first when they are not
 * cached. `--profile smoke` trains a small one in well under a minute.
 *
 * @module
 */
import { cliError, parseCli } from "../cli/args.ts";
import { ConfigError, loadConfig, PROFILES } from "../config/mod.ts";
import { initBackend } from "../backend/mod.ts";
import { exportBundle } from "./bundle.ts";

const CLI = {
  usage: "deno task export-model <experiment.yaml> --out DIR [--profile paper|local|smoke] [--seed N] " +
    "[--meco LABEL | --no-meco]",
  description: "Writes a model bundle for `deno task serve` from the runner's cache, training what is not cached.",
  positionals: { name: "<experiment.yaml>", min: 1, max: 1 },
  options: {
    out: { type: "string", required: true, nonEmpty: true, value: "DIR", help: "the bundle directory" },
    profile: { type: "choice", choices: PROFILES, help: "budget profile; default $MECO_PROFILE, else local" },
    seed: { type: "integer", min: 0, help: "seed of the cells; default the config's first" },
    meco: {
      type: "string",
      nonEmpty: true,
      value: "LABEL",
      help: "label of the meco defense entry; default the first",
    },
    "no-meco": { type: "boolean", help: "export the victim only" },
  },
} as const;

if (import.meta.main) {
  const { values, positionals } = parseCli(CLI);
  const path = positionals[0], out = values.out, seed = values.seed;
  if (values.meco !== undefined && values["no-meco"]) cliError(CLI, "give at most one of --meco and --no-meco");
  const meco = values["no-meco"] ? null : values.meco;
  try {
    const loaded = await loadConfig(path, values.profile);
    if (seed !== undefined && !loaded.config.seeds.includes(seed)) {
      cliError(CLI, `--seed ${seed} is not one of the config's seeds [${loaded.config.seeds}]`);
    }
    const backend = await initBackend(loaded.config.backend);
    console.log(`backend ${backend.reason}`);
    const meta = await exportBundle(loaded, out, { seed, meco });
    console.log(
      `wrote bundle ${out}: ${meta.dataset} ${meta.arch}, victim acc ${(meta.victim_acc * 100).toFixed(2)}%` +
        (meta.meco ? `, MeCo acc ${(meta.meco.acc * 100).toFixed(2)}% (L1 ${meta.meco.l1.toFixed(4)})` : ", no MeCo"),
    );
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      Deno.exit(1);
    }
    throw e;
  }
}
