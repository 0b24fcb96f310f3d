/**
 * The in-memory dataset shape shared by every reader: images as one flat NHWC
 * `Float32Array` of values in `[0, 1]`, labels as an `Int32Array`.
 *
 * @module
 */

/** Which half of a dataset. */
export type Split = "train" | "test";

/**
 * A labelled image dataset held in plain typed arrays (no tensors).
 *
 * Image `i` occupies `images[i * height * width * channels ..
 * (i + 1) * height * width * channels)`, laid out row by row, pixel by pixel,
 * channel last (NHWC), with values in `[0, 1]`.
 */
export interface Dataset {
  /** Registry name (e.g. `"mnist"`) or a free-form name for ad-hoc data. */
  readonly name: string;
  /** Which split this is. */
  readonly split: Split;
  /** NHWC pixel values in `[0, 1]`, length `n * height * width * channels`. */
  readonly images: Float32Array;
  /** Class indices in `[0, numClasses)`, length `n`. */
  readonly labels: Int32Array;
  /** Number of examples. */
  readonly n: number;
  /** Image height in pixels. */
  readonly height: number;
  /** Image width in pixels. */
  readonly width: number;
  /** Channels per pixel (1 for greyscale, 3 for RGB). */
  readonly channels: number;
  /** Number of classes. */
  readonly numClasses: number;
  /** Class names indexed by label, when known. */
  readonly classNames?: readonly string[];
}

/**
 * The number of values in one image of `ds` (`height * width * channels`).
 *
 * @example
 * ```ts
 * import { imageSize } from "./dataset.ts";
 * imageSize({ height: 28, width: 28, channels: 1 }); // 784
 * ```
 */
export function imageSize(
  ds: Pick<Dataset, "height" | "width" | "channels">,
): number {
  return ds.height * ds.width * ds.channels;
}

/** The tensor shape `[n, height, width, channels]` of a dataset's images. */
export function imageShape(
  ds: Pick<Dataset, "n" | "height" | "width" | "channels">,
): [number, number, number, number] {
  return [ds.n, ds.height, ds.width, ds.channels];
}
