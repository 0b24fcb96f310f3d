/**
 * Where downloaded and user-supplied datasets live by default:
 * `$MECO_DATA_DIR`, else `~/.cache/meco`.
 *
 * @module
 */

import { join } from "node:path";

/** The environment variable that overrides the data directory. */
export const DATA_DIR_ENV = "MECO_DATA_DIR";

/**
 * The default data / cache directory: `$MECO_DATA_DIR` if set, else
 * `$HOME/.cache/meco` (or `./.cache/meco` when `HOME` is unset).
 *
 * @example
 * ```ts
 * import { defaultDataDir } from "./cache_dir.ts";
 * console.log(defaultDataDir()); // e.g. "/home/me/.cache/meco"
 * ```
 */
export function defaultDataDir(): string {
  const fromEnv = Deno.env.get(DATA_DIR_ENV);
  if (fromEnv) return fromEnv;
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  return join(home ?? Deno.cwd(), ".cache", "meco");
}
