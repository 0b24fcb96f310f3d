/**
 * What notebooks call: results for a config at a profile. Stored results are
 * shown when their config hash, cache version and seeds match. Otherwise
 * nothing is computed unless asked — `MECO_RECOMPUTE=1` in the environment or
 * `{ recompute: true }` — and the result says what is missing, how long it
 * would take at the speed the stored runs in results/ measured on this
 * machine, and the command that starts it. When asked, the same runner as
 * `deno task repro` does the work, so the two never diverge.
 *
 * CI executes every notebook at the `smoke` profile with `MECO_RECOMPUTE=1`
 * (tests/notebooks/notebooks_test.ts), so the computing path stays tested;
 * the smoke profile gets no exception of its own.
 *
 * @module
 */
import type { ExperimentConfig } from "../config/mod.ts";
import { loadConfig, type LoadedConfig, type ProfileName } from "../config/mod.ts";
import { CACHE_VERSION, readJson } from "./cache.ts";
import { missingData } from "./data.ts";
import { formatDuration } from "./progress.ts";
import { REPO_ROOT, repoPath, resultsDirFor } from "./paths.ts";
import { attacksAgainst, rowsPerSeed, runExperiment, type Summary } from "./runner.ts";

/** What is missing for a config and how to compute it. */
export interface Pending {
  /** What is missing, in a sentence. */
  what: string;
  /** The (defense, attack, seed) rows to compute. */
  rows: number;
  /** Estimated minutes of the attacks, or undefined when no stored run measured a speed. */
  minutes?: number;
  /** Where the estimate's speed comes from, in a sentence. */
  basis: string;
  /** The command that computes it from a terminal. */
  command: string;
}

/** Result of {@linkcode ensureResults}. */
export interface Ensured {
  /** The loaded config. */
  loaded: LoadedConfig;
  /** The results directory. */
  dir: string;
  /** Whether the runner was invoked (false: the stored results matched, or nothing was computed). */
  recomputed: boolean;
  /**
   * Set when nothing could be shown (in a sentence): the config's dataset is
   * not on this machine, or no stored results match and recomputing was not
   * asked for (then `pending` says what and how).
   */
  missing?: string;
  /** What a recompute would compute, when one was needed and not asked for. */
  pending?: Pending;
}

/** Options of {@linkcode ensureResults}. */
export interface EnsureOptions {
  /** Compute what is missing (default: `MECO_RECOMPUTE=1` in the environment). */
  recompute?: boolean;
  /** Progress lines while computing. */
  log?: (m: string) => void;
  /** The results directory (default: {@linkcode resultsDirFor}). */
  resultsDir?: string;
}

function envRecompute(): boolean {
  try {
    return Deno.env.get("MECO_RECOMPUTE") === "1";
  } catch {
    return false; // no env permission
  }
}

const attackLabel = (a: ExperimentConfig["attacks"][number]) => a.name ?? a.type;

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Rows of every summary.json under `root` (results/ by default): attack label, queries and minutes. */
async function storedRows(
  root: string,
): Promise<{ attack: string; defense: string; queries: number; minutes: number }[]> {
  const out: { attack: string; defense: string; queries: number; minutes: number }[] = [];
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(root)];
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!e.isDirectory) continue;
    const s = await readJson<Summary>(`${root}/${e.name}/summary.json`);
    if (s === undefined || !Array.isArray(s.rows)) continue;
    for (const r of s.rows) {
      if (typeof r.minutes === "number" && typeof r.queries === "number" && typeof r.attack === "string") {
        out.push({ attack: r.attack, defense: String(r.defense), queries: r.queries, minutes: r.minutes });
      }
    }
  }
  return out;
}

/**
 * Estimated minutes of `rowsPerSeed × seeds` attack rows of `cfg`: each
 * attack's budget times the median minutes per query that stored rows of the
 * same attack label measured (any attack's, when none has that label); for a
 * config without attacks, the median minutes of stored rows of its defenses.
 */
export async function estimateMinutes(
  cfg: ExperimentConfig,
  seeds: number,
  root = repoPath("results"),
): Promise<{ minutes?: number; basis: string }> {
  const stored = await storedRows(root);
  const withQueries = stored.filter((r) => r.queries > 0 && r.minutes > 0);
  if (cfg.attacks.length === 0) {
    const per = cfg.defenses.map((d) => {
      const label = d.name ?? d.type;
      return median(stored.filter((r) => r.attack === "none" && r.defense === label).map((r) => r.minutes));
    });
    if (per.some((m) => m === undefined)) {
      return { basis: "no stored run of these defenses without an attack measured a time on this machine" };
    }
    return {
      minutes: seeds * per.reduce((a: number, b) => a + b!, 0),
      basis: "median minutes of the stored rows of the same defenses in results/",
    };
  }
  const any = median(withQueries.map((r) => r.minutes / r.queries));
  if (any === undefined) return { basis: "no stored run in results/ measured a speed on this machine" };
  let total = 0;
  const fallback: string[] = [];
  for (const a of cfg.attacks) {
    const own = median(withQueries.filter((r) => r.attack === attackLabel(a)).map((r) => r.minutes / r.queries));
    if (own === undefined) fallback.push(attackLabel(a));
    const against = cfg.defenses.filter((d) => attacksAgainst(cfg, d).includes(a)).length;
    total += a.budget * (own ?? any) * against * seeds;
  }
  return {
    minutes: total,
    basis: `attack budgets × the median minutes per query of ${withQueries.length} stored rows in results/` +
      (fallback.length > 0 ? ` (${fallback.join(", ")}: no stored row of its own, all attacks' median used)` : "") +
      "; training of victims and defenses not in the cell cache comes on top",
  };
}

/** Why the stored summary does not serve `loaded` (undefined when it does) and which seeds are to compute. */
function staleness(
  loaded: LoadedConfig,
  stored: Summary | undefined,
  dir: string,
): { what: string; seeds: number[] } | undefined {
  const seeds = loaded.config.seeds;
  const rel = dir.startsWith(REPO_ROOT) ? dir.slice(REPO_ROOT.length) : dir;
  if (stored === undefined) return { what: `no stored results in ${rel}/`, seeds };
  if (stored.meta.config_hash !== loaded.hash || stored.meta.cache_version !== CACHE_VERSION) {
    return {
      what: `the stored results in ${rel}/ are for another config or code version (config hash ${
        stored.meta.config_hash.slice(0, 12)
      }, cache version ${stored.meta.cache_version}; now ${loaded.hash.slice(0, 12)}, ${CACHE_VERSION})`,
      seeds,
    };
  }
  const absent = seeds.filter((s) => !stored.meta.seeds.includes(s));
  if (absent.length > 0) return { what: `seeds ${absent.join(", ")} are missing from ${rel}/`, seeds: absent };
  return undefined;
}

/**
 * Loads `configs/<file>` at `profile` (default `$MECO_PROFILE`, else local)
 * and returns its results directory: as stored when the stored summary
 * matches; otherwise, when asked (`options.recompute` or
 * `MECO_RECOMPUTE=1`), after running (or resuming) the experiment; otherwise
 * with `missing` and `pending` saying what is missing, the estimated time and
 * the command. A config whose dataset is not on this machine runs nothing.
 *
 * @example
 * ```ts ignore
 * const { dir, missing } = await ensureResults("mnist_dfme.yaml");
 * const fresh = await ensureResults("mnist_dfme.yaml", "smoke", undefined, { recompute: true });
 * ```
 */
export async function ensureResults(
  file: string,
  profile?: ProfileName,
  log?: (m: string) => void,
  options: EnsureOptions = {},
): Promise<Ensured> {
  const loaded = await loadConfig(repoPath(`configs/${file}`), profile);
  const dir = options.resultsDir ?? resultsDirFor(loaded);
  const stored = await readJson<Summary>(`${dir}/summary.json`);
  const stale = staleness(loaded, stored, dir);
  if (stale === undefined) return { loaded, dir, recomputed: false };
  const missing = await missingData(loaded.config);
  if (missing !== undefined) return { loaded, dir, recomputed: false, missing };
  const command = `deno task repro configs/${file} --profile ${loaded.profile}`;
  if (!(options.recompute ?? envRecompute())) {
    const cfg = loaded.config;
    const rows = (cfg.attacks.length === 0 ? cfg.defenses.length : rowsPerSeed(cfg)) * stale.seeds.length;
    const est = await estimateMinutes(cfg, stale.seeds.length);
    const pending: Pending = { what: stale.what, rows, minutes: est.minutes, basis: est.basis, command };
    const time = est.minutes === undefined ? "time unknown" : `≈ ${formatDuration(est.minutes * 60)}`;
    return {
      loaded,
      dir,
      recomputed: false,
      pending,
      missing: `Nothing computed: ${stale.what}. Computing ${rows} row(s) (seeds ${
        stale.seeds.join(", ")
      }) would take ${time} (${est.basis}). Start it with \`${command}\`, or set MECO_RECOMPUTE=1 and run the notebook again.`,
    };
  }
  await runExperiment(loaded, { resultsDir: dir, command, log: log ?? options.log });
  return { loaded, dir, recomputed: true };
}
