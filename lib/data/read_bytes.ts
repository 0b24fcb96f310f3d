/**
 * Reading a whole file into memory, with a missing file reported as a
 * {@linkcode DataError} and gzip content (magic `1f 8b`) decompressed
 * transparently.
 *
 * @module
 */

import { DataError } from "./data_error.ts";
import { gunzip, isGzip } from "./gzip.ts";

/**
 * Reads `path` whole; a missing path is a `missing_file` fault.
 *
 * @param path File to read.
 * @param hint Appended to the message of a missing file (e.g. where to get it).
 */
export async function readFileBytes(
  path: string,
  hint = "",
): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DataError(
        path,
        "missing_file",
        `file not found${hint ? `; ${hint}` : ""}`,
        { cause: e },
      );
    }
    throw e;
  }
}

/**
 * Reads `path` whole and, if it is gzip (by magic number, not by name),
 * returns the decompressed content.
 *
 * @example
 * ```ts ignore
 * import { readMaybeGzip } from "./read_bytes.ts";
 * const bytes = await readMaybeGzip("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
 * ```
 */
export async function readMaybeGzip(
  path: string,
  hint = "",
): Promise<Uint8Array> {
  const raw = await readFileBytes(path, hint);
  return isGzip(raw) ? gunzip(raw, path) : raw;
}

/** Whether `path` exists (file or directory). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
