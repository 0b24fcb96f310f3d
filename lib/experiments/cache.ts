/**
 * The cell cache: every (config part, seed) cell is stored under a key that
 * hashes exactly what determines it, so runs resume cell by cell and a
 * changed setting recomputes only what it affects.
 *
 * @module
 */
import { configHash } from "../config/mod.ts";
import { repoPath } from "./paths.ts";

/**
 * Bumped when a change to the code alters what a cached cell would contain
 * (cells record the commit too; this decides reuse).
 */
export const CACHE_VERSION = 1;

/**
 * Root of the cell cache: `$MECO_CACHE_DIR`, else `~/.cache/meco/runs` (outside
 * the work tree, so a fresh checkout on the same machine resumes), else
 * `.cache/runs` in the repository when there is no home directory.
 */
export function cacheRoot(): string {
  const env = Deno.env.get("MECO_CACHE_DIR");
  if (env) return env;
  const home = Deno.env.get("HOME");
  return home ? `${home}/.cache/meco/runs` : repoPath(".cache/runs");
}

/** A short stable key for a cell's determining inputs. */
export async function cellKey(kind: string, parts: unknown): Promise<string> {
  const h = await configHash({ v: CACHE_VERSION, kind, parts });
  return `${kind}/${h.slice(0, 16)}`;
}

/** Reads a JSON file, or undefined when absent. */
export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/** Writes a text file atomically (temp file beside it, then rename), creating its folder. */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  const dir = path.replace(/\/[^/]*$/, "");
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

/** Writes JSON atomically (temp file + rename). */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeTextAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * The directory of a cell keyed by `parts`. Cell keys used to include entry
 * labels (`name:`); a finished cell (one holding `marker`, e.g. meta.json)
 * stored under the key of `legacyParts` (the labeled parts) is reused rather
 * than recomputed. Pass `legacyParts` only when an entry has a label.
 */
export async function cellDir(kind: string, parts: unknown, marker: string, legacyParts?: unknown): Promise<string> {
  const dir = `${cacheRoot()}/${await cellKey(kind, parts)}`;
  if (legacyParts === undefined || await isFile(`${dir}/${marker}`)) return dir;
  const legacy = `${cacheRoot()}/${await cellKey(kind, legacyParts)}`;
  return (await isFile(`${legacy}/${marker}`)) ? legacy : dir;
}
