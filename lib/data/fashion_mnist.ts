/**
 * Fashion-MNIST, read from a directory of IDX files (plain or `.gz`): the
 * `dir` option, else `<data dir>/fashion-mnist`, else
 * `/usr/share/datasets/fashion-mnist` (Debian package `dataset-fashion-mnist`).
 *
 * @module
 */

import { join } from "node:path";
import { defaultDataDir } from "./cache_dir.ts";
import { FASHION_MNIST_CLASSES } from "./class_names.ts";
import { DataError } from "./data_error.ts";
import type { Dataset, Split } from "./dataset.ts";
import { readIdxDataset } from "./idx_dataset.ts";
import { resolveIdxFiles } from "./idx_dir.ts";
import { pathExists } from "./read_bytes.ts";
import { switchedOff } from "../system/optional_parts.ts";

/** Where Debian's `dataset-fashion-mnist` package installs the files. */
export const FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist";

/** The Debian package that provides Fashion-MNIST. */
export const FASHION_MNIST_DEBIAN_PACKAGE = "dataset-fashion-mnist";

/** Canonical Fashion-MNIST sizes. */
export const FASHION_MNIST_COUNTS: { readonly [S in Split]: number } = {
  train: 60000,
  test: 10000,
};

/** MD5s of the decompressed Fashion-MNIST IDX files. */
export const FASHION_MNIST_MD5: {
  readonly [S in Split]: { images: string; labels: string };
} = {
  train: {
    images: "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    labels: "9018921c3c673c538a1fc5bad174d6f9",
  },
  test: {
    images: "8181f5470baa50b63fa0f6fddb340f0a",
    labels: "15d484375f8d13e6eb1aabb0c3f46965",
  },
};

/** Options for {@linkcode loadFashionMnist}. */
export interface FashionMnistOptions {
  /** Directory holding the IDX files; overrides the default lookup. */
  dir?: string;
  /** Data directory whose `fashion-mnist/` subfolder is tried first (default {@linkcode defaultDataDir}). */
  dataDir?: string;
  /** Check canonical counts and MD5s of the decompressed files (default `true`). */
  verify?: boolean;
}

function howToGet(userDir: string): string {
  return `put train-images-idx3-ubyte, train-labels-idx1-ubyte, ` +
    `t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each plain or .gz) in ` +
    `${userDir} (or pass the dir option), or install the Debian package ` +
    `${FASHION_MNIST_DEBIAN_PACKAGE} (apt-get install ${FASHION_MNIST_DEBIAN_PACKAGE}), ` +
    `which puts them in ${FASHION_MNIST_SYSTEM_DIR}`;
}

/**
 * The directory Fashion-MNIST is read from; a `not_available`
 * {@linkcode DataError} saying where to put the files if none exists.
 */
export async function fashionMnistDir(
  opts: Pick<FashionMnistOptions, "dir" | "dataDir"> = {},
): Promise<string> {
  const userDir = join(opts.dataDir ?? defaultDataDir(), "fashion-mnist");
  // MECO_WITHOUT=fashion-mnist (or all) hides the data set wherever it is, as on a machine without it.
  if (opts.dir === undefined && switchedOff().has("fashion-mnist")) {
    throw new DataError(userDir, "not_available", `Fashion-MNIST switched off by MECO_WITHOUT; ${howToGet(userDir)}`);
  }
  const candidates = opts.dir !== undefined ? [opts.dir] : [userDir, FASHION_MNIST_SYSTEM_DIR];
  for (const dir of candidates) if (await pathExists(dir)) return dir;
  throw new DataError(
    candidates.join(" or "),
    "not_available",
    `Fashion-MNIST directory not found; ${howToGet(opts.dir ?? userDir)}`,
  );
}

/**
 * Loads Fashion-MNIST (28x28x1, 10 classes; 60000 train / 10000 test).
 *
 * @example
 * ```ts ignore
 * import { loadFashionMnist } from "./fashion_mnist.ts";
 * const test = await loadFashionMnist("test");
 * ```
 */
export async function loadFashionMnist(
  split: Split,
  opts: FashionMnistOptions = {},
): Promise<Dataset> {
  const verify = opts.verify ?? true;
  const dir = await fashionMnistDir(opts);
  const userDir = join(opts.dataDir ?? defaultDataDir(), "fashion-mnist");
  const files = await resolveIdxFiles(
    dir,
    split,
    howToGet(opts.dir ?? userDir),
  );
  return await readIdxDataset(files, {
    name: "fashion_mnist",
    split,
    numClasses: 10,
    classNames: FASHION_MNIST_CLASSES,
    expectedCount: verify ? FASHION_MNIST_COUNTS[split] : undefined,
    md5: verify ? FASHION_MNIST_MD5[split] : undefined,
  });
}
