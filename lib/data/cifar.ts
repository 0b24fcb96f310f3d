/**
 * CIFAR-10 and CIFAR-100 loaders: locate (or download) the binary batches,
 * then decode them into a {@linkcode Dataset}.
 *
 * @module
 */

import { join } from "node:path";
import { CIFAR100_COARSE_CLASSES, CIFAR100_FINE_CLASSES, CIFAR10_CLASSES } from "./class_names.ts";
import { type CifarLabelMode, type CifarVariant, readCifarDataset } from "./cifar_format.ts";
import { CIFAR_SOURCES, type CifarLocateOptions, locateCifar } from "./cifar_source.ts";
import type { Dataset, Split } from "./dataset.ts";

/** Options for {@linkcode loadCifar}. */
export interface CifarOptions extends CifarLocateOptions {
  /** CIFAR-100 label granularity (default `"fine"`); ignored for CIFAR-10. */
  labels?: CifarLabelMode;
  /** Check the canonical example counts (default `true`). */
  verify?: boolean;
}

/**
 * Loads a CIFAR split (32x32x3; 50000 train / 10000 test), downloading it
 * first if allowed and needed.
 *
 * @example
 * ```ts ignore
 * import { loadCifar } from "./cifar.ts";
 * const ds = await loadCifar("cifar100", "test", { labels: "coarse", download: false });
 * console.log(ds.numClasses); // 20
 * ```
 */
export async function loadCifar(
  variant: CifarVariant,
  split: Split,
  opts: CifarOptions = {},
): Promise<Dataset> {
  const src = CIFAR_SOURCES[variant];
  const dir = await locateCifar(variant, opts, split);
  const labels = opts.labels ?? "fine";
  const classNames = variant === "cifar10"
    ? CIFAR10_CLASSES
    : labels === "fine"
    ? CIFAR100_FINE_CLASSES
    : CIFAR100_COARSE_CLASSES;
  return await readCifarDataset(src.files[split].map((f) => join(dir, f)), {
    variant,
    split,
    labels,
    name: variant,
    classNames,
    expectedCount: (opts.verify ?? true) ? src.counts[split] : undefined,
  });
}
