/**
 * What notebooks call: results for a config at a profile, recomputed only
 * when the stored summary does not match the config hash and cache version.
 * The same runner as `deno task repro` does the work, so the two never
 * diverge.
 *
 * @module
 */
import { loadConfig, type LoadedConfig, type ProfileName } from "../config/mod.ts";
import { CACHE_VERSION, readJson } from "./cache.ts";
import { missingData } from "./data.ts";
import { repoPath, resultsDirFor } from "./paths.ts";
import { runExperiment, type Summary } from "./runner.ts";

/** Result of {@linkcode ensureResults}. */
export interface Ensured {
  /** The loaded config. */
  loaded: LoadedConfig;
  /** The results directory. */
  dir: string;
  /** Whether the runner was invoked (false: the stored results matched, or the data is missing). */
  recomputed: boolean;
  /**
   * Set when nothing could be shown: no stored results match and the config's
   * dataset is not on this machine (what is missing, in a sentence).
   */
  missing?: string;
}

/**
 * Loads `configs/<file>` at `profile` (default `$MECO_PROFILE`, else local)
 * and makes sure results/<name>/ holds its results: reuses them when their
 * config hash and cache version match, otherwise runs (or resumes) the
 * experiment; when its dataset is not on this machine it runs nothing and
 * says what is missing (`missing`).
 *
 * @example
 * ```ts ignore
 * const { dir } = await ensureResults("mnist_dfme.yaml");
 * ```
 */
export async function ensureResults(
  file: string,
  profile?: ProfileName,
  log?: (m: string) => void,
): Promise<Ensured> {
  const loaded = await loadConfig(repoPath(`configs/${file}`), profile);
  const dir = resultsDirFor(loaded);
  const stored = await readJson<Summary>(`${dir}/summary.json`);
  const fresh = stored !== undefined && stored.meta.config_hash === loaded.hash &&
    stored.meta.cache_version === CACHE_VERSION &&
    loaded.config.seeds.every((s) => stored.meta.seeds.includes(s));
  if (fresh) return { loaded, dir, recomputed: false };
  const missing = await missingData(loaded.config);
  if (missing !== undefined) return { loaded, dir, recomputed: false, missing };
  await runExperiment(loaded, {
    resultsDir: dir,
    command: `deno task repro configs/${file} --profile ${loaded.profile}`,
    log,
  });
  return { loaded, dir, recomputed: true };
}
