/**
 * The CIFAR-10 / CIFAR-100 binary format: fixed-size records of label
 * byte(s) followed by a 32x32 RGB image stored channel-major (1024 red, 1024
 * green, 1024 blue bytes). CIFAR-10 records carry one label byte (3073
 * bytes); CIFAR-100 records carry a coarse then a fine label byte (3074).
 *
 * @module
 */

import { DataError } from "./data_error.ts";
import type { Dataset, Split } from "./dataset.ts";

/** Which CIFAR binary layout. */
export type CifarVariant = "cifar10" | "cifar100";

/** Which CIFAR-100 label to use: 100 fine classes or 20 coarse superclasses. */
export type CifarLabelMode = "fine" | "coarse";

/** Height, width and channels of every CIFAR image. */
export const CIFAR_IMAGE_SHAPE = {
  height: 32,
  width: 32,
  channels: 3,
} as const;

const PIXELS = 32 * 32;
const IMAGE_BYTES = PIXELS * 3;

/** Bytes per record: 3073 for CIFAR-10, 3074 for CIFAR-100. */
export function cifarRecordSize(variant: CifarVariant): number {
  return (variant === "cifar10" ? 1 : 2) + IMAGE_BYTES;
}

/** Number of classes a variant / label mode has (10, 100 or 20). */
export function cifarNumClasses(
  variant: CifarVariant,
  labels: CifarLabelMode = "fine",
): number {
  return variant === "cifar10" ? 10 : labels === "fine" ? 100 : 20;
}

/**
 * The number of records in a CIFAR file of `size` bytes; an empty file is a
 * `truncated` fault and a size that is not a whole number of records a
 * `record_size` fault, both naming `file`.
 */
export function cifarRecordCount(
  size: number,
  variant: CifarVariant,
  file: string,
): number {
  const rec = cifarRecordSize(variant);
  if (size === 0) {
    throw new DataError(file, "truncated", "empty CIFAR file", {
      expected: `a multiple of ${rec} bytes`,
      found: "0 bytes",
    });
  }
  if (size % rec !== 0) {
    throw new DataError(
      file,
      "record_size",
      `size is not a whole number of ${variant} records of ${rec} bytes`,
      {
        expected: `a multiple of ${rec}`,
        found: `${size} bytes (${Math.floor(size / rec)} records + ${size % rec} bytes)`,
      },
    );
  }
  return size / rec;
}

/**
 * Decodes every record of one CIFAR file into `images` (NHWC, `[0, 1]`) and
 * `labels`, starting at example index `at`. Returns the number of records.
 *
 * @param bytes The file's content.
 * @param file The file's path, for errors.
 * @param variant Record layout.
 * @param labelMode For CIFAR-100, which label byte to use.
 * @param images Destination pixels, large enough for `at + count` images.
 * @param labels Destination labels, large enough for `at + count` labels.
 * @param at Index of the first example to write.
 */
export function decodeCifarInto(
  bytes: Uint8Array,
  file: string,
  variant: CifarVariant,
  labelMode: CifarLabelMode,
  images: Float32Array,
  labels: Int32Array,
  at: number,
): number {
  const count = cifarRecordCount(bytes.length, variant, file);
  const rec = cifarRecordSize(variant);
  const labelOffset = variant === "cifar10" || labelMode === "coarse" ? 0 : 1;
  const headerBytes = rec - IMAGE_BYTES;
  const numClasses = cifarNumClasses(variant, labelMode);
  for (let r = 0; r < count; r++) {
    const off = r * rec;
    const y = bytes[off + labelOffset];
    if (y >= numClasses) {
      throw new DataError(file, "bad_label", `label of record ${r}`, {
        expected: `< ${numClasses}`,
        found: y,
      });
    }
    labels[at + r] = y;
    const src = off + headerBytes;
    const dst = (at + r) * IMAGE_BYTES;
    for (let p = 0; p < PIXELS; p++) {
      const o = dst + 3 * p;
      images[o] = bytes[src + p] / 255;
      images[o + 1] = bytes[src + PIXELS + p] / 255;
      images[o + 2] = bytes[src + 2 * PIXELS + p] / 255;
    }
  }
  return count;
}

/** How to read a set of CIFAR batch files. */
export interface CifarReadOptions {
  /** Record layout. */
  variant: CifarVariant;
  /** Split to record. */
  split: Split;
  /** CIFAR-100 label granularity (default `"fine"`); ignored for CIFAR-10. */
  labels?: CifarLabelMode;
  /** Dataset name to record (default: the variant). */
  name?: string;
  /** Class names to record. */
  classNames?: readonly string[];
  /** If set, the total number of records the files must hold. */
  expectedCount?: number;
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DataError(path, "missing_file", "CIFAR batch file not found", {
        cause: e,
      });
    }
    throw e;
  }
}

/**
 * Reads and concatenates CIFAR batch files (e.g. `data_batch_1.bin` ..
 * `data_batch_5.bin`) into one {@linkcode Dataset}. Every file is checked
 * before anything is returned: missing files, wrong record sizes, labels out
 * of range and (with `expectedCount`) a wrong total are {@linkcode DataError}s.
 *
 * @example
 * ```ts ignore
 * import { readCifarDataset } from "./cifar_format.ts";
 * const ds = await readCifarDataset(["cifar-10-batches-bin/test_batch.bin"], {
 *   variant: "cifar10",
 *   split: "test",
 * });
 * ```
 */
export async function readCifarDataset(
  files: readonly string[],
  opts: CifarReadOptions,
): Promise<Dataset> {
  const labelMode = opts.labels ?? "fine";
  let total = 0;
  for (const f of files) {
    total += cifarRecordCount(await fileSize(f), opts.variant, f);
  }
  if (opts.expectedCount !== undefined && total !== opts.expectedCount) {
    throw new DataError(
      files.join(", "),
      "count_mismatch",
      `${opts.variant} ${opts.split} should have ${opts.expectedCount} records`,
      { expected: opts.expectedCount, found: total },
    );
  }
  const images = new Float32Array(total * IMAGE_BYTES);
  const labels = new Int32Array(total);
  let at = 0;
  for (const f of files) {
    const bytes = await Deno.readFile(f);
    if (at + bytes.length / cifarRecordSize(opts.variant) > total) {
      throw new DataError(f, "count_mismatch", "file grew while reading");
    }
    at += decodeCifarInto(
      bytes,
      f,
      opts.variant,
      labelMode,
      images,
      labels,
      at,
    );
  }
  if (at !== total) {
    throw new DataError(
      files.join(", "),
      "count_mismatch",
      "files changed while reading",
      { expected: total, found: at },
    );
  }
  return {
    name: opts.name ?? opts.variant,
    split: opts.split,
    images,
    labels,
    n: total,
    ...CIFAR_IMAGE_SHAPE,
    numClasses: cifarNumClasses(opts.variant, labelMode),
    classNames: opts.classNames,
  };
}
