/**
 * `deno task export-model <experiment.yaml> --out DIR [--profile P] [--seed N] [--meco LABEL | --no-meco]`:
 * writes a model bundle for `deno task serve` from the runner's cache of that
 * experiment, training the victim (and MeCo nets) first when they are not
 * cached. `--profile smoke` trains a small one in well under a minute.
 *
 * @module
 */
import { ConfigError, loadConfig, type ProfileName } from "../config/mod.ts";
import { initBackend } from "../backend/mod.ts";
import { exportBundle } from "./bundle.ts";

function usage(msg?: string): never {
  if (msg) console.error(`error: ${msg}`);
  console.error(
    "usage: deno task export-model <experiment.yaml> --out DIR [--profile paper|local|smoke] [--seed N] " +
      "[--meco LABEL | --no-meco]",
  );
  Deno.exit(2);
}

if (import.meta.main) {
  const args = [...Deno.args];
  let path: string | undefined, out: string | undefined, profile: string | undefined;
  let seed: number | undefined;
  let meco: string | null | undefined;
  while (args.length > 0) {
    const a = args.shift()!;
    if (a === "--out") out = args.shift() ?? usage("--out needs a directory");
    else if (a === "--profile") profile = args.shift() ?? usage("--profile needs a value");
    else if (a === "--meco") meco = args.shift() ?? usage("--meco needs a defense label");
    else if (a === "--no-meco") meco = null;
    else if (a === "--seed") {
      const v = args.shift() ?? usage("--seed needs a value");
      seed = Number(v);
      if (!Number.isInteger(seed) || seed < 0) usage(`--seed: '${v}' is not a non-negative integer`);
    } else if (a.startsWith("--")) usage(`unknown option ${a}`);
    else if (path === undefined) path = a;
    else usage(`unexpected argument ${a}`);
  }
  if (path === undefined) usage("no experiment config given");
  if (out === undefined) usage("no --out directory given");
  try {
    const loaded = await loadConfig(path, profile as ProfileName | undefined);
    if (seed !== undefined && !loaded.config.seeds.includes(seed)) {
      usage(`--seed ${seed} is not one of the config's seeds [${loaded.config.seeds}]`);
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
