/**
 * `deno task sweep <config.yaml> --profile P [--seeds 0,1] --scheduler local|slurm
 * [--workers N] [--partition …] [--gres …] [--time …] [--set path=value]...`:
 * lists the (config, seed) cells that are not cached yet, runs them on N local
 * worker processes or submits them as one Slurm job array (one array task per
 * cell), waits with progress per cell, and, when every cell is done, writes
 * results/<name>/ exactly as `deno task repro` does. A failed cell is reported
 * with its log and the command that resubmits it alone; cached cells are never
 * recomputed; a lock per cache cell keeps two workers from computing the same
 * cell. Seeds beyond the profile's extend the config's seeds (as
 * `--set 'seeds=[...]'` would), so a resubmitted subset gives the same summary.
 *
 * @module
 */
import { ConfigError, PROFILES } from "../config/mod.ts";
import { resultsDirFor } from "../experiments/paths.ts";
import { logTail, runSweep, SCHEDULERS, type SweepOptions } from "../experiments/sweep.ts";
import { onednnAdvice } from "../system/optional_parts.ts";
import { parseCli } from "./args.ts";

const CLI = {
  usage: "deno task sweep <config.yaml> --scheduler local|slurm [--profile paper|local|smoke] [--seeds 0,1] " +
    "[--workers N] [--partition P] [--gres G] [--time T] [--set path=value]...",
  description: "Runs the uncached (config, seed) cells of an experiment on local workers or as a Slurm job array, " +
    "then writes results/<name>/ as `deno task repro` does.",
  positionals: { name: "<config.yaml>", min: 1, max: 1 },
  options: {
    scheduler: { type: "choice", choices: SCHEDULERS, required: true, help: "where the cells run" },
    profile: { type: "choice", choices: PROFILES, help: "budget profile; default $MECO_PROFILE, else local" },
    seeds: { type: "integers", min: 0, help: "seeds to sweep; default the profile's (others extend them)" },
    set: { type: "string", multiple: true, value: "path=value", help: "override a config field" },
    workers: { type: "integer", min: 1, help: "local: parallel worker processes; default the number of CPUs" },
    partition: { type: "string", nonEmpty: true, help: "slurm: sbatch --partition" },
    gres: { type: "string", nonEmpty: true, value: "GRES", help: "slurm: sbatch --gres, e.g. gpu:1" },
    time: { type: "string", nonEmpty: true, value: "D-HH:MM:SS", help: "slurm: sbatch --time per array task" },
    "cpus-per-task": { type: "integer", min: 1, help: "slurm: sbatch --cpus-per-task" },
    mem: { type: "string", nonEmpty: true, help: "slurm: sbatch --mem, e.g. 16G" },
    sbatch: {
      type: "string",
      multiple: true,
      nonEmpty: true,
      value: "OPTION",
      help: "slurm: a further sbatch option, e.g. --sbatch=--account=proj",
    },
    setup: {
      type: "string",
      multiple: true,
      nonEmpty: true,
      value: "LINE",
      help: "slurm: a shell line run before each task, e.g. 'module load deno'",
    },
    poll: { type: "number", min: 0.1, default: 1, value: "SECONDS", help: "slurm: how often squeue is polled" },
  },
} as const;

/** The command that reruns this sweep for `seeds` only, with the same flags. */
function resubmitCommand(seeds: number[]): string {
  const args: string[] = [];
  for (let i = 0; i < Deno.args.length; i++) {
    const a = Deno.args[i];
    if (a === "--seeds") i++;
    else if (!a.startsWith("--seeds=")) args.push(/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`);
  }
  return `deno task sweep ${[...args, "--seeds", seeds.join(",")].join(" ")}`;
}

if (import.meta.main) {
  const { values, positionals } = parseCli(CLI);
  const path = positionals[0];
  const opts: SweepOptions = {
    config: path,
    profile: values.profile,
    overrides: values.set,
    seeds: values.seeds,
    scheduler: values.scheduler,
    workers: values.workers,
    slurm: {
      partition: values.partition,
      gres: values.gres,
      time: values.time,
      cpusPerTask: values["cpus-per-task"],
      mem: values.mem,
      extra: values.sbatch,
      setup: values.setup,
    },
    pollMs: values.poll * 1000,
    command: `deno task sweep ${Deno.args.join(" ")}`,
  };
  try {
    const advice = onednnAdvice();
    if (advice !== "") console.log(advice);
    const t0 = performance.now();
    const r = await runSweep(opts);
    for (const o of r.outcomes.filter((o) => o.ok)) {
      console.log(`cell seed ${o.cell.seed}: done in ${o.seconds.toFixed(1)} s`);
    }
    if (r.failed.length > 0) {
      for (const f of r.failed) {
        console.error(`\ncell seed ${f.cell.seed} FAILED (${f.state}); log: ${f.log}`);
        const tail = await logTail(f.log, 30);
        console.error(tail ? tail.replace(/^/gm, "  | ") : "  (the log is empty)");
      }
      const seeds = r.failed.map((f) => f.cell.seed);
      console.error(`\n${r.failed.length} of ${r.outcomes.length} cell(s) failed; no summary was written.`);
      console.error(`resubmit ${seeds.length === 1 ? "it" : "them"} alone: ${resubmitCommand(seeds)}`);
      if (values.scheduler === "slurm" && r.dir !== undefined) {
        console.error(
          `or, under Slurm, the array task(s) alone: sbatch --array=${
            r.failed.map((f) => f.cell.index).join(",")
          } ${r.dir}/job.sh (then rerun the sweep for the summary)`,
        );
      }
      Deno.exit(1);
    }
    console.table(r.summary!.rows);
    console.log(
      `sweep done in ${((performance.now() - t0) / 1000).toFixed(1)} s; wrote ${resultsDirFor(r.loaded)}/summary.json`,
    );
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      Deno.exit(1);
    }
    throw e;
  }
}
