/**
 * Paths anchored at the repository root, so that the CLI (run from the root)
 * and notebooks (run from notebooks/) read and write the same places.
 *
 * @module
 */
import type { LoadedConfig } from "../config/mod.ts";

/** The repository root (the folder holding deno.json), with a trailing slash. */
export const REPO_ROOT: string = new URL("../../", import.meta.url).pathname;

/** A path under the repository root. */
export function repoPath(rel: string): string {
  return `${REPO_ROOT}${rel.replace(/^\/+/, "")}`;
}

/**
 * Where a config's results go: its `output.dir` (default results/<name>/) for
 * the `local` profile (the committed results); with the default dir, other
 * profiles go to results/<name>/<profile>/ (smoke runs are not committed).
 */
export function resultsDirFor(loaded: LoadedConfig): string {
  const c = loaded.config;
  const dir = c.output.dir ?? `results/${c.name}`;
  if (dir === `results/${c.name}` && loaded.profile !== "local") return repoPath(`${dir}/${loaded.profile}`);
  return dir.startsWith("/") ? dir : repoPath(dir);
}
