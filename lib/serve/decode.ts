/**
 * Decoding a prediction request body into a batch of images, with every
 * check the API promises: shape, channel count, batch size, finite values in
 * [0, 1]. Two encodings are accepted:
 *
 * - `{"images": [[[[v, …], …], …], …]}`: nested JSON arrays of shape [n, h, w, c];
 * - `{"images_b64": "<base64>", "shape": [n, h, w, c]}`: little-endian float32, row-major.
 *
 * @module
 */
import { ApiError } from "./api_error.ts";

/** A decoded batch: `n` images of `shape` [h, w, c], values in [0, 1], row-major. */
export interface DecodedBatch {
  /** Number of images. */
  n: number;
  /** The values, n·h·w·c of them. */
  data: Float32Array;
}

/** What {@linkcode decodeImages} checks against. */
export interface DecodeSpec {
  /** Shape [h, w, c] of one image. */
  imageShape: readonly [number, number, number];
  /** Most images in one request. */
  maxBatch: number;
}

function invalid(message: string): never {
  throw new ApiError(400, "invalid_request", message);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  return typeof v === "string" ? "a string" : typeof v === "object" ? "an object" : `${typeof v} ${v}`;
}

function checkBatchSize(n: number, spec: DecodeSpec, field: string): void {
  if (n === 0) throw new ApiError(422, "empty_batch", `${field}: the batch is empty; send at least one image`);
  if (n > spec.maxBatch) {
    throw new ApiError(413, "batch_too_large", `${field}: ${n} images in one request; at most ${spec.maxBatch}`, {
      max_batch: spec.maxBatch,
    });
  }
}

function badValue(v: number, at: string): never {
  if (!Number.isFinite(v)) {
    throw new ApiError(422, "non_finite", `${at} is ${v}; pixel values must be finite numbers in [0, 1]`);
  }
  throw new ApiError(422, "out_of_range", `${at} is ${v}; pixel values must be in [0, 1]`);
}

function checkValues(data: Float32Array, field: string, shape: readonly number[]): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v >= 0 && v <= 1) continue;
    let r = i;
    const idx = shape.map((_, d) => {
      const stride = shape.slice(d + 1).reduce((a, b) => a * b, 1);
      const k = Math.floor(r / stride);
      r -= k * stride;
      return k;
    });
    badValue(v, `${field}[${idx.join("][")}]`);
  }
}

function fromNested(images: unknown, spec: DecodeSpec): DecodedBatch {
  const [h, w, c] = spec.imageShape;
  const want = `[n, ${h}, ${w}, ${c}]`;
  if (!Array.isArray(images)) invalid(`images: expected an array of shape ${want}, found ${describe(images)}`);
  const n = images.length;
  checkBatchSize(n, spec, "images");
  const data = new Float32Array(n * h * w * c);
  let o = 0;
  for (let i = 0; i < n; i++) {
    const img = images[i];
    if (!Array.isArray(img) || img.length !== h) {
      throw new ApiError(
        422,
        "wrong_shape",
        `images[${i}]: expected ${h} rows (images of shape ${want}), found ${describe(img)}`,
      );
    }
    for (let y = 0; y < h; y++) {
      const row = img[y];
      if (!Array.isArray(row) || row.length !== w) {
        throw new ApiError(
          422,
          "wrong_shape",
          `images[${i}][${y}]: expected ${w} pixels (images of shape ${want}), found ${describe(row)}`,
        );
      }
      for (let x = 0; x < w; x++) {
        const px = row[x];
        if (!Array.isArray(px)) {
          throw new ApiError(
            422,
            "wrong_shape",
            `images[${i}][${y}][${x}]: expected an array of ${c} channel value(s) (images of shape ${want}), ` +
              `found ${describe(px)}`,
          );
        }
        if (px.length !== c) {
          throw new ApiError(
            422,
            "wrong_channels",
            `images[${i}][${y}][${x}]: expected ${c} channel(s), found ${px.length}`,
            { expected_channels: c },
          );
        }
        for (let k = 0; k < c; k++) {
          const v = px[k];
          if (typeof v !== "number") {
            invalid(`images[${i}][${y}][${x}][${k}]: expected a number, found ${describe(v)}`);
          }
          // JSON.parse reads 1e999 as Infinity: check the parsed double, before float32 rounding.
          if (!(v >= 0 && v <= 1)) badValue(v, `images[${i}][${y}][${x}][${k}]`);
          data[o++] = v;
        }
      }
    }
  }
  return { n, data };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function fromBase64(b64: unknown, shape: unknown, spec: DecodeSpec): DecodedBatch {
  const [h, w, c] = spec.imageShape;
  if (typeof b64 !== "string") invalid(`images_b64: expected a base64 string, found ${describe(b64)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    invalid(
      `shape: expected [n, ${h}, ${w}, ${c}] (non-negative integers) with images_b64, found ${JSON.stringify(shape)}`,
    );
  }
  if (shape.length !== 4 || shape[1] !== h || shape[2] !== w) {
    throw new ApiError(422, "wrong_shape", `shape: expected [n, ${h}, ${w}, ${c}], found [${shape.join(", ")}]`);
  }
  if (shape[3] !== c) {
    throw new ApiError(422, "wrong_channels", `shape: expected ${c} channel(s), found ${shape[3]}`, {
      expected_channels: c,
    });
  }
  const n = shape[0] as number;
  checkBatchSize(n, spec, "shape[0]");
  if (b64.length % 4 !== 0 || !BASE64.test(b64)) {
    throw new ApiError(
      400,
      "malformed_base64",
      "images_b64: not valid base64 (standard alphabet A-Z a-z 0-9 + /, padded with = to a multiple of 4 characters)",
    );
  }
  let bin: string;
  try {
    bin = atob(b64);
  } catch {
    throw new ApiError(400, "malformed_base64", "images_b64: not valid base64");
  }
  const expected = n * h * w * c * 4;
  if (bin.length !== expected) {
    throw new ApiError(
      422,
      "wrong_shape",
      `images_b64: shape [${shape.join(", ")}] needs ${expected} bytes of float32, the base64 decodes to ${bin.length}`,
    );
  }
  const bytes = new Uint8Array(expected);
  for (let i = 0; i < expected; i++) bytes[i] = bin.charCodeAt(i);
  const view = new DataView(bytes.buffer);
  const data = new Float32Array(n * h * w * c);
  for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(i * 4, true);
  checkValues(data, "images_b64", [n, h, w, c]);
  return { n, data };
}

/**
 * Decodes a parsed JSON request body into an image batch; throws an
 * {@linkcode ApiError} naming the fault otherwise.
 *
 * @example
 * ```ts
 * import { decodeImages } from "./decode.ts";
 * const b = decodeImages({ images: [[[[0], [1]], [[0.5], [0]]]] }, { imageShape: [2, 2, 1], maxBatch: 8 });
 * b.n; // 1
 * ```
 */
export function decodeImages(body: unknown, spec: DecodeSpec): DecodedBatch {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    invalid(`request body: expected a JSON object with "images" or "images_b64" and "shape", found ${describe(body)}`);
  }
  const o = body as Record<string, unknown>;
  const known = new Set(["images", "images_b64", "shape"]);
  const unknown = Object.keys(o).filter((k) => !known.has(k));
  if (unknown.length > 0) invalid(`request body: unknown field(s) ${unknown.map((k) => JSON.stringify(k)).join(", ")}`);
  const hasNested = "images" in o, hasB64 = "images_b64" in o;
  if (hasNested && hasB64) invalid('request body: send either "images" or "images_b64", not both');
  if (hasNested) {
    if ("shape" in o) invalid('request body: "shape" goes with "images_b64" only');
    return fromNested(o.images, spec);
  }
  if (hasB64) return fromBase64(o.images_b64, o.shape, spec);
  invalid('request body: missing "images" (nested arrays) or "images_b64" with "shape"');
}

/** Encodes images (row-major float32) as the API's base64 form. */
export function encodeBase64(data: Float32Array): string {
  const bytes = new Uint8Array(data.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  let s = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) s += String.fromCharCode(...bytes.subarray(i, i + chunk));
  return btoa(s);
}
