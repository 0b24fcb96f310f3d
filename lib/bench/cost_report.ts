/**
 * The deployment-cost experiment (MeCo paper, Tables 13–15) in one run: for
 * every defense of a config, built around the seed's victim exactly as the
 * runner builds it (MeCo from its cached cell), its utility (accuracy, L1),
 * per-query latency at batch 1 and 256 and peak tensor memory; then MeCo's
 * training-time cost over plain training. Writes results/<name>/summary.json
 * and rows.csv with the commit and command.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend, nativeReport } from "../backend/mod.ts";
import { gatherBatch } from "../data/mod.ts";
import { loadConfig, type LoadedConfig, type MecoDefenseConfig, type ProfileName } from "../config/mod.ts";
import { readJson, writeJson, writeTextAtomic } from "../experiments/cache.ts";
import { type DefenseCell, defenseCell, defenseLabel, type Log, victimCell } from "../experiments/cells.ts";
import { loadExperimentData } from "../experiments/data.ts";
import { REPO_ROOT, repoPath, resultsDirFor } from "../experiments/paths.ts";
import {
  commandLine,
  gitCommit,
  provenanceNow,
  type ProvenanceSummary,
  recordProcessProvenance,
  type RunProvenance,
  summariseProvenance,
} from "../experiments/provenance.ts";
import { toCsv } from "../experiments/results.ts";
import { type CostReps, DEFAULT_REPS, type DefenseCost, measureDefenses } from "./defense_cost.ts";
import { measureTraining, type TrainingCost } from "./training_cost.ts";

/** One defense's row. */
export interface CostRow extends DefenseCost {
  /** Defense label. */
  defense: string;
  /** Defense type. */
  type: string;
  /** Defended test accuracy. */
  target_acc: number;
  /** Mean L1 distance of its outputs from the clean probabilities (test set). */
  l1: number;
  /** Tensor bytes the defense holds besides the victim (surrogate, MeCo's target and h). */
  owned_bytes: number;
  /** Peak tensor bytes of a batch-256 query with only this defense deployed: victim + owned + the call's own peak. */
  peak_alone_bytes_b256: number | null;
  /** Batch-1 latency over the undefended victim's. */
  slowdown_b1: number;
  /** Batch-256 latency over the undefended victim's. */
  slowdown_b256: number;
  /** The run that measured the row: commit, command, date, backend, oneDNN version and ISA, CPU and its load then. */
  provenance?: RunProvenance;
}

/** results/defense_cost/summary.json. */
export interface CostSummary {
  /** Provenance and settings. */
  meta: {
    name: string;
    commit: string;
    command: string;
    backend: string;
    profile: string;
    config_hash: string;
    seed: number;
    reps: CostReps;
    memory: string;
    minutes: number;
    generated: string;
    /** The rows' runs (lib/experiments/provenance.ts); absent in summaries written before rows recorded them. */
    provenance?: ProvenanceSummary;
  };
  /** One row per defense. */
  rows: CostRow[];
  /** MeCo's latency ratio to the other defenses: other's ms / MeCo's ms (>1: MeCo is faster). */
  meco_speedup: Record<string, { b1: number; b256: number }>;
  /** MeCo training over plain training (absent without a meco defense). */
  training: TrainingCost | null;
}

/** Options of {@linkcode runDefenseCost}. */
export interface CostOptions {
  /** Timing repetitions. */
  reps?: CostReps;
  /** Training mini-batches timed per method. */
  trainSteps?: number;
  /** Where to write (default: {@linkcode resultsDirFor}). */
  resultsDir?: string;
  /** Progress lines. */
  log?: Log;
  /** The command recorded in summary.json (default: this process's command line). */
  command?: string;
}

/**
 * Runs the cost experiment on the config's first seed and writes its results.
 *
 * @example
 * ```ts ignore
 * await runDefenseCost(await loadConfig("configs/defense_cost.yaml", "local"));
 * ```
 */
export async function runDefenseCost(loaded: LoadedConfig, opts: CostOptions = {}): Promise<CostSummary> {
  const cfg = loaded.config;
  const log = opts.log ?? ((m: string) => console.log(m));
  const reps = opts.reps ?? DEFAULT_REPS;
  const commit = await gitCommit();
  const backend = await initBackend(cfg.backend);
  log(`backend: ${backend.reason}`);
  await recordProcessProvenance(backend.name, nativeReport(), opts.command);
  const t0 = performance.now();
  const seed = cfg.seeds[0];
  const data = await loadExperimentData(cfg);
  const victim = await victimCell(cfg, seed, data, log);
  const b = gatherBatch(data.test, Array.from({ length: 256 }, (_, i) => i % data.test.n));
  const x = tf.tensor4d(b.images, [256, data.test.height, data.test.width, data.test.channels]);
  const rows: CostRow[] = [];
  const victimBytes = victim.model.weights.reduce((n, w) => n + w.read().size * 4, 0);
  try {
    // Warm the backend up (kernel set-up, wasm heap growth) so that the first defense timed does not pay for it.
    for (let i = 0; i < 10; i++) {
      tf.tidy(() => (victim.model.apply(x, { training: false }) as tf.Tensor).dataSync());
      tf.tidy(() => (victim.model.apply(tf.slice(x, 0, 1), { training: false }) as tf.Tensor).dataSync());
    }
    const cells: DefenseCell[] = [];
    try {
      const owned: number[] = [];
      for (const d of cfg.defenses) {
        const before = tf.memory().numBytes;
        cells.push(await defenseCell(cfg, d, seed, victim, data, log));
        owned.push(tf.memory().numBytes - before);
      }
      log(`timing ${cells.length} defenses, ${reps.rounds} interleaved rounds`);
      const costs = await measureDefenses(cells.map((c) => c.defense), x, reps);
      const base = costs[cfg.defenses.findIndex((d) => d.type === "none")];
      cfg.defenses.forEach((d, i) => {
        const cost = costs[i];
        rows.push({
          defense: defenseLabel(d),
          type: d.type,
          target_acc: cells[i].acc,
          l1: cells[i].l1,
          ...cost,
          owned_bytes: owned[i],
          peak_alone_bytes_b256: cost.peak_extra_bytes_b256 === null
            ? null
            : victimBytes + owned[i] + cost.peak_extra_bytes_b256,
          slowdown_b1: base ? cost.ms_b1 / base.ms_b1 : 1,
          slowdown_b256: base ? cost.ms_b256 / base.ms_b256 : 1,
          provenance: provenanceNow(),
        });
        log(`${defenseLabel(d)}: ${cost.ms_b1.toFixed(2)} ms (b1), ${cost.ms_b256.toFixed(1)} ms (b256)`);
      });
    } finally {
      cells.forEach((c) => c.dispose());
    }
  } finally {
    x.dispose();
    victim.model.dispose();
  }
  const meco = rows.find((r) => r.type === "meco");
  const meco_speedup: CostSummary["meco_speedup"] = {};
  if (meco) {
    for (const r of rows) {
      if (r !== meco) meco_speedup[r.defense] = { b1: r.ms_b1 / meco.ms_b1, b256: r.ms_b256 / meco.ms_b256 };
    }
  }
  const mecoCfg = cfg.defenses.find((d): d is MecoDefenseConfig => d.type === "meco");
  let training: TrainingCost | null = null;
  if (mecoCfg) {
    training = await measureTraining(cfg, mecoCfg, data.train, opts.trainSteps ?? 10, seed);
    log(
      `training: plain ${training.plain_ms_per_step.toFixed(0)} ms/step, MeCo ${
        training.meco_ms_per_step.toFixed(0)
      } ms/step`,
    );
  }
  const summary: CostSummary = {
    meta: {
      name: cfg.name,
      commit,
      command: opts.command ?? commandLine(),
      backend: backend.name,
      profile: loaded.profile,
      config_hash: loaded.hash,
      seed,
      reps,
      memory: "tfjs tensor bytes (tf.memory / tf.profile peakBytes), not RSS. peak_bytes_b256: all live tensors at " +
        "the call's high-water mark (every defense of the run is built, so it includes all their weights); " +
        "peak_extra = peak minus bytes live before the call (activations); owned = bytes the defense holds besides " +
        "the victim; peak_alone = victim + owned + peak_extra. Host-side JS arrays and wasm heap growth not counted.",
      minutes: (performance.now() - t0) / 60000,
      generated: new Date().toISOString(),
      provenance: summariseProvenance(rows),
    },
    rows,
    meco_speedup,
    training,
  };
  const dir = opts.resultsDir ?? resultsDirFor(loaded);
  await Deno.mkdir(dir, { recursive: true });
  await writeJson(`${dir}/summary.json`, summary);
  await writeTextAtomic(`${dir}/rows.csv`, toCsv(rows as unknown as Record<string, unknown>[]));
  // Relative to the repository: logs reach notebook outputs, which never show this machine's paths.
  log(`wrote ${dir.startsWith(REPO_ROOT) ? dir.slice(REPO_ROOT.length) : dir}/summary.json`);
  return summary;
}

/** What {@linkcode ensureCostResults} found or computed. */
export interface EnsuredCost {
  /** The loaded config. */
  loaded: LoadedConfig;
  /** Where summary.json and rows.csv are. */
  dir: string;
  /** True when this call ran the measurements. */
  recomputed: boolean;
  /**
   * Set when the stored results are missing or of another config version and measuring was not asked for: what is
   * missing, how long measuring took last time, and the command that measures.
   */
  missing?: string;
}

/** Options of {@linkcode ensureCostResults}. */
export interface EnsureCostOptions {
  /** Profile (default `MECO_PROFILE`, else `local`). */
  profile?: ProfileName;
  /** Progress lines. */
  log?: Log;
  /** Where the results are kept (default: {@linkcode resultsDirFor}). */
  resultsDir?: string;
  /** Measure when the stored results do not match (default: `MECO_RECOMPUTE=1` in the environment). */
  recompute?: boolean;
}

/**
 * The cost results of `configs/<file>`: reused when the results folder holds a
 * summary for the same resolved config (its hash); otherwise measured and
 * written only when asked (`opts.recompute`, or `MECO_RECOMPUTE=1`), and
 * else reported as `missing` (the stored summary, if any, stays for display).
 * Timings are of the machine and the moment they were taken; rerun
 * `deno task cost` to measure again.
 */
export async function ensureCostResults(
  file = "defense_cost.yaml",
  opts: EnsureCostOptions = {},
): Promise<EnsuredCost> {
  const loaded = await loadConfig(repoPath(`configs/${file}`), opts.profile);
  const dir = opts.resultsDir ?? resultsDirFor(loaded);
  const stored = await readJson<CostSummary>(`${dir}/summary.json`);
  if (stored !== undefined && stored.meta?.config_hash === loaded.hash) return { loaded, dir, recomputed: false };
  const command = `deno task cost configs/${file} --profile ${loaded.profile}`;
  if (!(opts.recompute ?? Deno.env.get("MECO_RECOMPUTE") === "1")) {
    const what = stored === undefined
      ? "no stored cost results"
      : `the stored cost results are of another version of the config (hash ${
        String(stored.meta?.config_hash).slice(0, 12)
      }, now ${loaded.hash.slice(0, 12)}); they are shown as they are`;
    const last = stored?.meta?.minutes !== undefined
      ? ` Measuring took ${stored.meta.minutes.toFixed(1)} min last time.`
      : "";
    return {
      loaded,
      dir,
      recomputed: false,
      missing: `${what}.${last} Measure with \`${command}\`, or set MECO_RECOMPUTE=1 and run the notebook again.`,
    };
  }
  await runDefenseCost(loaded, { resultsDir: dir, log: opts.log, command });
  return { loaded, dir, recomputed: true };
}
