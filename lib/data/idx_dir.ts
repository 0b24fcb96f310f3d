/**
 * Locating the four standard (Fashion-)MNIST IDX files in a directory,
 * accepting each either plain or gzipped (`name` or `name.gz`).
 *
 * @module
 */

import { join } from "node:path";
import { DataError } from "./data_error.ts";
import type { Split } from "./dataset.ts";
import type { IdxFiles } from "./idx_dataset.ts";
import { pathExists } from "./read_bytes.ts";

/** The standard IDX file base names (without `.gz`) per split. */
export const IDX_FILE_NAMES: { readonly [S in Split]: IdxFiles } = {
  train: {
    images: "train-images-idx3-ubyte",
    labels: "train-labels-idx1-ubyte",
  },
  test: {
    images: "t10k-images-idx3-ubyte",
    labels: "t10k-labels-idx1-ubyte",
  },
};

async function pick(dir: string, base: string, hint: string): Promise<string> {
  for (const name of [base, `${base}.gz`]) {
    const p = join(dir, name);
    if (await pathExists(p)) return p;
  }
  throw new DataError(
    join(dir, `${base}[.gz]`),
    "missing_file",
    `neither ${base} nor ${base}.gz is in ${dir}${hint ? `; ${hint}` : ""}`,
  );
}

/**
 * Paths of the images and labels files of `split` in `dir`, each either
 * plain or `.gz`; a missing one is a `missing_file` fault.
 *
 * @example
 * ```ts ignore
 * import { resolveIdxFiles } from "./idx_dir.ts";
 * await resolveIdxFiles("/usr/share/datasets/fashion-mnist", "test");
 * // { images: ".../t10k-images-idx3-ubyte.gz", labels: ".../t10k-labels-idx1-ubyte.gz" }
 * ```
 */
export async function resolveIdxFiles(
  dir: string,
  split: Split,
  hint = "",
): Promise<IdxFiles> {
  const names = IDX_FILE_NAMES[split];
  return {
    images: await pick(dir, names.images, hint),
    labels: await pick(dir, names.labels, hint),
  };
}
