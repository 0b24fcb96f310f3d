/**
 * The experiment runner: config → seeds → cells → rows → results/<name>/.
 *
 * For every seed it trains (or loads) the victim, builds every defense around
 * it, and runs every attack against every defense through a BlackBox. Each
 * cell is cached by a hash of exactly what determines it, so a run stopped
 * part-way resumes (attacks from their last checkpoint), seeds accumulate over
 * invocations, and the summary always covers every cached cell of the config.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend, nativeReport } from "../backend/mod.ts";
import {
  type AttackConfig,
  ConfigError,
  type DefenseConfig,
  type ExperimentConfig,
  type LoadedConfig,
} from "../config/mod.ts";
import { PERTURBATION_NET_VERSION } from "../models/perturbation.ts";
import { deriveSeed } from "../data/mod.ts";
import { accuracy, predictorOf } from "../metrics/accuracy.ts";
import { BlackBox } from "../victim/mod.ts";
import { buildAttack, checkpointQueries, labelModeOf } from "./attack_factory.ts";
import { attackerData } from "./attacker_data.ts";
import { CACHE_VERSION, cacheRoot, cellDir, readJson, writeJson } from "./cache.ts";
import {
  type DefenseCell,
  defenseCell,
  defenseLabel,
  type Log,
  mecoCellDir,
  unlabeled,
  victimCell,
  victimCellDir,
} from "./cells.ts";
import { loadExperimentData } from "./data.ts";
import { withLock } from "./lock.ts";
import { commandLine, gitCommit, provenanceNow, recordProcessProvenance, summariseProvenance } from "./provenance.ts";
import { resultsDirFor } from "./paths.ts";
import { defaultProgress, type ProgressSink, type TaskProgress } from "./progress.ts";
import { writeResults } from "./results.ts";
import { restoreCells, type RestoreReport } from "./archive.ts";
import { groupCells, type Row, type Summary } from "./rows.ts";

export type { Row, Summary };

/** A MeCo cell's recorded displacements, for its rows (nothing for other defenses). */
function displacements(cell: DefenseCell): Pick<Row, "svgd_rms" | "h_rms"> {
  return cell.svgd_rms === undefined ? {} : { svgd_rms: cell.svgd_rms, h_rms: cell.h_rms };
}

/** Options of {@linkcode runExperiment}. */
export interface RunOptions {
  /** Seeds to compute in this invocation (default: all of the config's). Cached cells of other seeds still count. */
  seeds?: number[];
  /** Only gather cached cells; compute nothing. */
  cachedOnly?: boolean;
  /**
   * Compute only these cells, `defense/attack` labels (`*` for any, e.g. `meco/*`); the other cells are read from
   * the cache when they are there. Default: every cell. See {@linkcode parseOnly}.
   */
  only?: string[];
  /** Where to write summary.json etc. (default: {@linkcode resultsDirFor}). */
  resultsDir?: string;
  /** Command recorded in meta (default: this process's command line). */
  command?: string;
  /** Progress lines (default: console.log). */
  log?: Log;
  /**
   * Live progress of trainings and attacks (default: {@linkcode defaultProgress}: a live display in a
   * notebook, a bar on a terminal, lines through `log` otherwise).
   */
  progress?: ProgressSink;
}

/** The cache key of a (defense, attack, seed) cell: everything that determines its row. */
function attackCellDir(cfg: ExperimentConfig, d: DefenseConfig, a: AttackConfig, seed: number): Promise<string> {
  const parts = (defense: unknown, attack: unknown) => ({
    dataset: cfg.dataset,
    victim: cfg.victim,
    defense,
    ...(d.type === "meco" ? { h: PERTURBATION_NET_VERSION } : {}),
    attack,
    eval: cfg.eval,
    seed,
  });
  // Which defenses an attack runs against does not change what one of its cells computes.
  const { defenses: _against, ...attack } = a;
  const labeled = d.name !== undefined || a.name !== undefined;
  return cellDir("attack", parts(unlabeled(d), unlabeled(attack)), "row.json", labeled ? parts(d, attack) : undefined);
}

/** The cache key (`attack/<hash>`) of an attack cell's directory. */
function cellKeyOf(dir: string): string {
  return dir.slice(cacheRoot().length + 1);
}

/**
 * The cached row of a (defense, attack, seed) cell, or undefined. A cell may have been computed under another
 * config's labels: it is reported under this config's, with the key it is cached under.
 */
async function readCellRow(
  cfg: ExperimentConfig,
  d: DefenseConfig,
  a: AttackConfig,
  seed: number,
): Promise<Row | undefined> {
  const dir = await attackCellDir(cfg, d, a, seed);
  const row = await readJson<Row>(`${dir}/row.json`);
  return row === undefined
    ? undefined
    : { ...row, defense: defenseLabel(d), attack: attackLabel(a), cell: cellKeyOf(dir) };
}

function attackLabel(a: AttackConfig): string {
  return a.name ?? a.type;
}

async function attackRow(
  cfg: ExperimentConfig,
  a: AttackConfig,
  defLabel: string,
  seed: number,
  cell: DefenseCell,
  data: Awaited<ReturnType<typeof loadExperimentData>>,
  log: Log,
  progress: ProgressSink,
): Promise<Row> {
  const d = cfg.defenses.find((d) => defenseLabel(d) === defLabel)!;
  const dir = await attackCellDir(cfg, d, a, seed);
  const cached = () => readCellRow(cfg, d, a, seed);
  // Another worker may be attacking it: wait for its lock, then use its row.
  return await cached() ??
    await withLock(
      `${dir}.lock`,
      async () => await cached() ?? await computeAttackRow(dir, cfg, a, defLabel, seed, cell, data, log, progress),
      { log },
    );
}

async function computeAttackRow(
  dir: string,
  cfg: ExperimentConfig,
  a: AttackConfig,
  defLabel: string,
  seed: number,
  cell: DefenseCell,
  data: Awaited<ReturnType<typeof loadExperimentData>>,
  log: Log,
  progress: ProgressSink,
): Promise<Row> {
  const ckpt = `${dir}/checkpoint`;
  const spent = await checkpointQueries(ckpt);
  const shape: [number, number, number] = [data.train.height, data.train.width, data.train.channels];
  const official = "estimation" in a && a.estimation === "undefended";
  const bb = new BlackBox(cell.defense, {
    imageShape: shape,
    numClasses: data.train.numClasses,
    budget: a.budget,
    labels: labelModeOf(a),
    spent,
    // The official MeCo evaluation protocol, only when the attack's config names it (never a default).
    ...(official ? { estimationOracle: cell.undefended } : {}),
  });
  const attack = buildAttack(a, {
    imageShape: shape,
    numClasses: data.train.numClasses,
    data: attackerData(data),
    // Every DFME curve point records the estimate's cosine with the true gradient and the top-1 changes.
    diagnostics: {
      oracle: cell.observer, // its own instance: measuring must not draw from the attack's defense
      ...(official ? { estimationOracle: cell.undefended } : {}),
      victim: cell.target,
    },
  });
  const t0 = performance.now();
  const label = `${defLabel}/${attackLabel(a)} seed ${seed}`;
  let cloneAcc: number | undefined;
  let elapsedMs = 0;
  const task = (queries: number): TaskProgress => ({
    label,
    unit: "queries",
    done: queries,
    total: a.budget,
    resumedFrom: spent,
    sessionMs: performance.now() - t0,
    cloneAcc,
  });
  if (spent > 0) log(`${label}: resuming from the checkpoint at ${spent} queries`);
  const result = await attack.extract(bb, a.budget, {
    seed: deriveSeed(seed, 10),
    checkpointDir: ckpt,
    evaluate: (clone) => accuracy(predictorOf(clone), data.test, cfg.eval.batch_size),
    onProgress: async (p) => {
      if (p.cloneAcc !== undefined) cloneAcc = p.cloneAcc;
      elapsedMs = p.elapsedMs;
      await progress.update(task(p.queries));
    },
  });
  const final = result.curve.length > 0
    ? result.curve[result.curve.length - 1].cloneAcc
    : accuracy(predictorOf(result.clone), data.test, cfg.eval.batch_size);
  result.clone.dispose();
  const row: Row = {
    defense: defLabel,
    attack: attackLabel(a),
    seed,
    target_acc: cell.acc,
    l1: cell.l1,
    ...displacements(cell),
    protocol: bb.protocol,
    clone_acc: final,
    queries: result.queries,
    // Wall time over all invocations of the attack (a resumed run adds to its checkpoint's).
    minutes: Math.max(elapsedMs, performance.now() - t0) / 60000,
    curve: result.curve,
    provenance: provenanceNow(),
    cell: cellKeyOf(dir),
  };
  await writeJson(`${dir}/row.json`, row);
  cloneAcc = final;
  await progress.end(
    task(row.queries),
    `clone accuracy ${(final * 100).toFixed(2)}% after ${row.queries} queries (${row.minutes.toFixed(1)} min)`,
  );
  return row;
}

/**
 * Runs (or resumes) the experiment and writes results/<name>/: summary.json
 * ({meta, rows}), rows.csv and curves.json.
 *
 * @example
 * ```ts ignore
 * const summary = await runExperiment(await loadConfig("configs/mnist_dfme.yaml", "smoke"));
 * ```
 */
export async function runExperiment(loaded: LoadedConfig, opts: RunOptions = {}): Promise<Summary> {
  const cfg = loaded.config;
  const log = opts.log ?? ((m: string) => console.log(m));
  const progress = opts.progress ?? defaultProgress(log);
  const compute = new Set(opts.cachedOnly ? [] : (opts.seeds ?? cfg.seeds));
  checkSeeds(loaded, [...compute]);
  const selected = parseOnly(loaded, opts.only);
  const resultsDir = opts.resultsDir ?? resultsDirFor(loaded);
  await restoreStoredCells(loaded, resultsDir, log);
  const commit = await gitCommit(); // the code this invocation runs, taken before any work
  const backend = await initBackend(cfg.backend);
  log(`backend: ${backend.reason}`);
  const command = opts.command ?? commandLine();
  await recordProcessProvenance(backend.name, nativeReport(), command);
  const data = await loadExperimentData(cfg);
  const rows: Row[] = [];
  for (const seed of cfg.seeds) {
    const cells = await collectSeed(cfg, seed, data, compute.has(seed), log, progress, selected);
    rows.push(...cells);
  }
  if (rows.length === 0 && opts.cachedOnly) {
    // Nothing to gather: say so rather than replace stored results with an empty summary.
    throw new NothingCachedError(
      cfg.attacks.length === 0
        ? `${cfg.name} has no attacks: --cached gathers attack rows only; run it without --cached (its cached ` +
          `victims and MeCo cells are reused, nothing is retrained)`
        : `${cfg.name} (profile ${loaded.profile}): no cell is cached in ${cacheRoot()}; run without --cached ` +
          `to compute it (deno task repro ${loaded.source} --profile ${loaded.profile})`,
    );
  }
  const missing = missingCells(cfg, rows);
  if (missing.length > 0) {
    log(`${missing.length} of ${expectedCells(cfg).length} cell(s) not in this summary yet: ${groupCells(missing)}`);
  }
  const budgets = [...new Set(cfg.attacks.map((a) => a.budget))];
  const summary: Summary = {
    meta: {
      name: cfg.name,
      commit,
      command,
      backend: backend.name,
      profile: loaded.profile,
      config_hash: loaded.hash,
      cache_version: CACHE_VERSION,
      budget: budgets.length === 1 ? budgets[0] : null,
      seeds: [...new Set(rows.map((r) => r.seed))],
      minutes: rows.reduce((s, r) => s + r.minutes, 0),
      generated: new Date().toISOString(),
      provenance: summariseProvenance(rows),
      missing_cells: missing,
    },
    rows: rows.map(({ curve: _curve, ...r }) => r),
  };
  await writeResults(resultsDir, summary, rows);
  return summary;
}

/**
 * Puts the finished cells that `resultsDir` (a committed results/<name>/) holds for `loaded` into the cell cache
 * where it lacks them ({@linkcode restoreCells}), so that they are gathered, not recomputed; says what it did
 * through `log`.
 */
export async function restoreStoredCells(loaded: LoadedConfig, resultsDir: string, log: Log): Promise<RestoreReport> {
  const cfg = loaded.config;
  const report = await restoreCells(resultsDir, loaded.hash, async (row) => {
    const d = cfg.defenses.find((d) => defenseLabel(d) === row.defense);
    const a = d === undefined ? undefined : attacksAgainst(cfg, d).find((a) => attackLabel(a) === row.attack);
    return d === undefined || a === undefined || !cfg.seeds.includes(row.seed)
      ? undefined
      : cellKeyOf(await attackCellDir(cfg, d, a, row.seed));
  });
  if (report.restored > 0) log(`${report.restored} finished cell(s) of ${resultsDir} restored into the cache`);
  if (report.skipped.length > 0) {
    log(`${report.skipped.length} stored row(s) of ${resultsDir} not restored (${report.skipped[0]})`);
  }
  return report;
}

/** `--cached` found no cell of the config in the cache; nothing was written. */
export class NothingCachedError extends Error {
  /** "NothingCachedError". */
  override name = "NothingCachedError";
}

/** Refuses seeds that are not among the config's (at its profile). */
function checkSeeds(loaded: LoadedConfig, seeds: number[]): void {
  const cfg = loaded.config;
  const unknown = seeds.filter((s) => !cfg.seeds.includes(s));
  if (unknown.length > 0) {
    throw new ConfigError(loaded.source, [{
      path: "seeds",
      message: `seeds ${unknown.join(", ")} asked for are not among the seeds of profile ${loaded.profile} ` +
        `([${cfg.seeds.join(", ")}]); add them to the profile's seeds or pass --set 'seeds=[...]'`,
    }]);
  }
}

/** Options of {@linkcode runCell}. */
export interface CellRunOptions {
  /** Progress lines (default: console.log). */
  log?: Log;
  /** Live progress (default: {@linkcode defaultProgress} through `log`). */
  progress?: ProgressSink;
  /** Command recorded in the rows' provenance (a sweep's worker: the sweep's; default this process's). */
  command?: string;
}

/**
 * Computes (or resumes) exactly one (config, seed) cell: the victim, every
 * defense and every attack row of `seed`, each into the cache, and writes no
 * summary. What a sweep's worker (a local process or a Slurm array task)
 * runs; {@linkcode runExperiment} then assembles the summary from the cache.
 * Cached parts are loaded, never recomputed, and a part another worker holds
 * the lock of is waited for.
 *
 * @example
 * ```ts ignore
 * const rows = await runCell(await loadConfig("configs/mnist_dfme.yaml", "smoke"), 0);
 * ```
 */
export async function runCell(loaded: LoadedConfig, seed: number, opts: CellRunOptions = {}): Promise<Row[]> {
  checkSeeds(loaded, [seed]);
  const log = opts.log ?? ((m: string) => console.log(m));
  const progress = opts.progress ?? defaultProgress(log);
  const backend = await initBackend(loaded.config.backend);
  log(`backend: ${backend.reason}`);
  await recordProcessProvenance(backend.name, nativeReport(), opts.command);
  const data = await loadExperimentData(loaded.config);
  return await collectSeed(loaded.config, seed, data, true, log, progress);
}

/**
 * Whether the (config, seed) cell is complete in the cache, so that
 * {@linkcode runCell} would compute nothing: every attack row of `seed`, or,
 * for a config without attacks, its victim and every MeCo defense (the
 * output-side defenses are not cached; they are rebuilt in seconds).
 */
export async function cellCached(cfg: ExperimentConfig, seed: number): Promise<boolean> {
  if (cfg.attacks.length > 0) {
    return (await cachedRows(cfg, seed)).length === rowsPerSeed(cfg);
  }
  if (await readJson(`${await victimCellDir(cfg, seed)}/meta.json`) === undefined) return false;
  for (const d of cfg.defenses) {
    if (d.type === "meco" && await readJson(`${await mecoCellDir(cfg, d, seed)}/meta.json`) === undefined) return false;
  }
  return true;
}

async function collectSeed(
  cfg: ExperimentConfig,
  seed: number,
  data: Awaited<ReturnType<typeof loadExperimentData>>,
  compute: boolean,
  log: Log,
  progress: ProgressSink,
  selected: CellFilter = () => true,
): Promise<Row[]> {
  if (!compute) return await cachedRows(cfg, seed);
  if (cfg.attacks.length > 0) {
    // Every row cached, or none of the uncached ones selected: the rows there are, without loading any model.
    const cached = await cachedRows(cfg, seed);
    if (cached.length === rowsPerSeed(cfg)) return cached;
    const missing = cfg.defenses.flatMap((d) =>
      attacksAgainst(cfg, d).filter((a) =>
        selected(defenseLabel(d), attackLabel(a)) &&
        !cached.some((r) => r.defense === defenseLabel(d) && r.attack === attackLabel(a))
      )
    );
    if (missing.length === 0) return cached;
  }
  const victim = await victimCell(cfg, seed, data, log);
  const rows: Row[] = [];
  try {
    for (const d of cfg.defenses) {
      const label = defenseLabel(d);
      const chosen = attacksAgainst(cfg, d).filter((a) => selected(label, attackLabel(a)));
      if (cfg.attacks.length > 0 && chosen.length === 0) {
        // Nothing of this defense to compute: its cached rows only (the defense is not built).
        for (const a of attacksAgainst(cfg, d)) {
          const row = await readCellRow(cfg, d, a, seed);
          if (row !== undefined) rows.push(row);
        }
        continue;
      }
      const cell = await defenseCell(cfg, d, seed, victim, data, log, progress);
      try {
        if (cfg.attacks.length === 0) {
          rows.push({
            defense: label,
            attack: "none",
            seed,
            target_acc: cell.acc,
            l1: cell.l1,
            ...displacements(cell),
            clone_acc: null,
            queries: 0,
            minutes: cell.minutes,
            curve: [],
            // A MeCo cell's is the run that trained it (absent when cached before runs were recorded); an output
            // defense is built by this run.
            provenance: d.type === "meco" ? cell.provenance : provenanceNow(),
          });
        }
        for (const a of attacksAgainst(cfg, d)) {
          if (selected(label, attackLabel(a))) {
            rows.push(await attackRow(cfg, a, label, seed, cell, data, log, progress));
          } else {
            const row = await readCellRow(cfg, d, a, seed);
            if (row !== undefined) rows.push(row);
          }
        }
      } finally {
        cell.dispose();
      }
    }
  } finally {
    victim.model.dispose();
  }
  log(`seed ${seed} done; tensors in memory: ${tf.memory().numTensors}`);
  return rows;
}

/** Whether the attack cell (defense label, attack label) is to be computed. */
export type CellFilter = (defense: string, attack: string) => boolean;

/**
 * The cells `only` selects (`defense/attack` labels, `*` for any), or every cell when it is undefined or empty.
 * A pattern that selects no cell of the config is a {@linkcode ConfigError} naming the cells there are, and so is
 * `only` for a config without attacks (its rows come from defense cells, which `only` does not select).
 */
export function parseOnly(loaded: LoadedConfig, only: readonly string[] | undefined): CellFilter {
  if (only === undefined || only.length === 0) return () => true;
  const cfg = loaded.config;
  if (cfg.attacks.length === 0) {
    throw new ConfigError("--only", [{
      path: only.join(" "),
      message: `${cfg.name} has no attacks: --only selects attack cells; run it whole (cached cells are reused)`,
    }]);
  }
  const cells = cfg.defenses.flatMap((d) => attacksAgainst(cfg, d).map((a) => [defenseLabel(d), attackLabel(a)]));
  const patterns = only.map((text) => {
    const parts = text.split("/");
    if (parts.length !== 2 || parts.some((p) => p === "")) {
      throw new ConfigError("--only", [{ path: text, message: "expected defense/attack, e.g. meco/dfme or meco/*" }]);
    }
    return { text, defense: parts[0], attack: parts[1] };
  });
  const match = (p: { defense: string; attack: string }, d: string, a: string) =>
    (p.defense === "*" || p.defense === d) && (p.attack === "*" || p.attack === a);
  const unmatched = patterns.filter((p) => !cells.some(([d, a]) => match(p, d, a)));
  if (unmatched.length > 0) {
    throw new ConfigError(
      "--only",
      unmatched.map((p) => ({
        path: p.text,
        message: `selects no cell of ${cfg.name} (profile ${loaded.profile}); its cells: ${
          cells.map(([d, a]) => `${d}/${a}`).join(", ")
        }`,
      })),
    );
  }
  return (d, a) => patterns.some((p) => match(p, d, a));
}

/** The attacks run against defense `d`: every attack, or those whose `defenses:` list names it. */
export function attacksAgainst(cfg: ExperimentConfig, d: DefenseConfig): AttackConfig[] {
  const label = defenseLabel(d);
  return cfg.attacks.filter((a) => a.defenses === undefined || a.defenses.includes(label));
}

/** The number of attack rows one seed of `cfg` has. */
export function rowsPerSeed(cfg: ExperimentConfig): number {
  return cfg.defenses.reduce((n, d) => n + attacksAgainst(cfg, d).length, 0);
}

/**
 * The config's cells, `defense/attack seed N`, in the runner's order: every (defense, attack it faces) per seed, or
 * every defense with attack `none` for a config without attacks.
 */
export function expectedCells(cfg: ExperimentConfig): string[] {
  const cells: string[] = [];
  for (const seed of cfg.seeds) {
    for (const d of cfg.defenses) {
      const attacks = cfg.attacks.length === 0 ? ["none"] : attacksAgainst(cfg, d).map(attackLabel);
      for (const a of attacks) cells.push(`${defenseLabel(d)}/${a} seed ${seed}`);
    }
  }
  return cells;
}

/** The cells of {@linkcode expectedCells} that `rows` has no row of. */
export function missingCells(
  cfg: ExperimentConfig,
  rows: readonly { defense: string; attack: string; seed: number }[],
): string[] {
  const have = new Set(rows.map((r) => `${r.defense}/${r.attack} seed ${r.seed}`));
  return expectedCells(cfg).filter((c) => !have.has(c));
}

/** Rows of `seed` that are already cached (attack rows only; nothing is computed). */
async function cachedRows(cfg: ExperimentConfig, seed: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const d of cfg.defenses) {
    for (const a of attacksAgainst(cfg, d)) {
      const row = await readCellRow(cfg, d, a, seed);
      if (row !== undefined) rows.push(row);
    }
  }
  return rows;
}
