/**
 * Turning a pair of IDX files (images `[n, h, w]` or `[n, h, w, c]` of bytes,
 * labels `[n]` of bytes) into a {@linkcode Dataset}.
 *
 * @module
 */

import { DataError } from "./data_error.ts";
import type { Dataset, Split } from "./dataset.ts";
import { type IdxArray, parseIdx } from "./idx_format.ts";
import { assertMd5 } from "./md5.ts";
import { readMaybeGzip } from "./read_bytes.ts";

/** Paths of an IDX image file and its label file (gzipped or not). */
export interface IdxFiles {
  /** The images file (`*-images-idx3-ubyte[.gz]`). */
  images: string;
  /** The labels file (`*-labels-idx1-ubyte[.gz]`). */
  labels: string;
}

/** How to interpret and check an IDX pair. */
export interface IdxDatasetOptions {
  /** Dataset name to record. */
  name: string;
  /** Split to record. */
  split: Split;
  /** Number of classes; every label must be below it. */
  numClasses: number;
  /** Class names to record. */
  classNames?: readonly string[];
  /** If set, the number of examples the files must hold. */
  expectedCount?: number;
  /** If set, MD5s of the decompressed file contents. */
  md5?: { images?: string; labels?: string };
  /** Appended to a missing-file message (where to get the files). */
  missingHint?: string;
}

/**
 * Builds a {@linkcode Dataset} from decoded IDX arrays, checking types,
 * shapes, counts and label range. Pixels are scaled from bytes to `[0, 1]`.
 */
export function idxToDataset(
  images: IdxArray,
  labels: IdxArray,
  files: IdxFiles,
  opts: IdxDatasetOptions,
): Dataset {
  if (
    images.type !== 0x08 ||
    (images.dims.length !== 3 && images.dims.length !== 4)
  ) {
    throw new DataError(files.images, "bad_header", "not an image file", {
      expected: "unsigned bytes with dims [n, h, w] or [n, h, w, c]",
      found: `type 0x${images.type.toString(16)} dims [${images.dims}]`,
    });
  }
  if (labels.type !== 0x08 || labels.dims.length !== 1) {
    throw new DataError(files.labels, "bad_header", "not a label file", {
      expected: "unsigned bytes with dims [n]",
      found: `type 0x${labels.type.toString(16)} dims [${labels.dims}]`,
    });
  }
  const [n, height, width] = images.dims;
  const channels = images.dims.length === 4 ? images.dims[3] : 1;
  if (labels.dims[0] !== n) {
    throw new DataError(
      files.labels,
      "count_mismatch",
      `label count differs from image count in ${files.images}`,
      { expected: n, found: labels.dims[0] },
    );
  }
  if (opts.expectedCount !== undefined && n !== opts.expectedCount) {
    throw new DataError(
      files.images,
      "count_mismatch",
      `${opts.name} ${opts.split} should have ${opts.expectedCount} examples`,
      { expected: opts.expectedCount, found: n },
    );
  }
  const src = images.data as Uint8Array;
  const pixels = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) pixels[i] = src[i] / 255;
  const lab = new Int32Array(n);
  const srcLab = labels.data as Uint8Array;
  for (let i = 0; i < n; i++) {
    const y = srcLab[i];
    if (y >= opts.numClasses) {
      throw new DataError(files.labels, "bad_label", `label at index ${i}`, {
        expected: `< ${opts.numClasses}`,
        found: y,
      });
    }
    lab[i] = y;
  }
  return {
    name: opts.name,
    split: opts.split,
    images: pixels,
    labels: lab,
    n,
    height,
    width,
    channels,
    numClasses: opts.numClasses,
    classNames: opts.classNames,
  };
}

/**
 * Reads an IDX image/label pair (each gzipped or plain, detected by magic)
 * into a {@linkcode Dataset}. Any fault throws a {@linkcode DataError}
 * naming the file; no partial dataset is ever returned.
 *
 * @example
 * ```ts ignore
 * import { readIdxDataset } from "./idx_dataset.ts";
 * const ds = await readIdxDataset(
 *   { images: "t10k-images-idx3-ubyte.gz", labels: "t10k-labels-idx1-ubyte.gz" },
 *   { name: "fashion_mnist", split: "test", numClasses: 10 },
 * );
 * ```
 */
export async function readIdxDataset(
  files: IdxFiles,
  opts: IdxDatasetOptions,
): Promise<Dataset> {
  const hint = opts.missingHint ?? "";
  const imageBytes = await readMaybeGzip(files.images, hint);
  const labelBytes = await readMaybeGzip(files.labels, hint);
  // Structural faults first: they say more than a checksum mismatch does.
  const images = parseIdx(imageBytes, files.images);
  const labels = parseIdx(labelBytes, files.labels);
  const ds = idxToDataset(images, labels, files, opts);
  if (opts.md5?.images) assertMd5(imageBytes, opts.md5.images, files.images);
  if (opts.md5?.labels) assertMd5(labelBytes, opts.md5.labels, files.labels);
  return ds;
}
