/**
 * The worker of a sweep: `deno run -A lib/cli/sweep_cell.ts <manifest.json>
 * --index N` computes cell N of the sweep (a local worker process, or a Slurm
 * array task with `--index $SLURM_ARRAY_TASK_ID`) through the runner's
 * `runCell`, into the cache directory named in the manifest; it writes no
 * summary. It refuses to run when the config changed since the sweep was
 * made (its hash differs).
 *
 * @module
 */
import { ConfigError, loadConfig } from "../config/mod.ts";
import { runCell } from "../experiments/runner.ts";
import { readManifest } from "../experiments/sweep.ts";
import { cliError, parseCli } from "./args.ts";

const CLI = {
  usage: "deno run -A lib/cli/sweep_cell.ts <manifest.json> --index N",
  description: "Computes one cell of a sweep into the cache (what `deno task sweep` dispatches).",
  positionals: { name: "<manifest.json>", min: 1, max: 1 },
  options: {
    index: { type: "integer", min: 0, required: true, help: "the cell's index (the Slurm array task id)" },
  },
} as const;

if (import.meta.main) {
  const { values, positionals } = parseCli(CLI);
  const manifest = await readManifest(positionals[0]);
  const cell = manifest.cells.find((c) => c.index === values.index);
  if (cell === undefined) {
    cliError(CLI, `--index ${values.index}: the sweep has cells 0 to ${manifest.cells.length - 1}`);
  }
  Deno.env.set("MECO_CACHE_DIR", manifest.cache_dir);
  console.log(
    `== cell ${cell.index} (seed ${cell.seed}) of ${manifest.config} (profile ${manifest.profile}) on ` +
      `${Deno.hostname()}, pid ${Deno.pid}, ${new Date().toISOString()}`,
  );
  try {
    const loaded = await loadConfig(manifest.config, manifest.profile, { overrides: manifest.overrides });
    if (loaded.hash !== manifest.config_hash) {
      console.error(
        `${manifest.config} changed since the sweep was made (hash ${loaded.hash.slice(0, 12)}, ` +
          `sweep ${manifest.config_hash.slice(0, 12)}); run the sweep again`,
      );
      Deno.exit(1);
    }
    const rows = await runCell(loaded, cell.seed, { command: manifest.command });
    console.log(`== cell ${cell.index} (seed ${cell.seed}) done: ${rows.length} row(s)`);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      Deno.exit(1);
    }
    throw e;
  }
}
