/**
 * Gzip detection (by magic number `1f 8b`) and decompression with faults
 * reported as {@linkcode DataError}s.
 *
 * @module
 */

import { gunzipSync } from "node:zlib";
import { DataError } from "./data_error.ts";

/**
 * Whether `bytes` starts with the gzip magic number `1f 8b`.
 *
 * @example
 * ```ts
 * import { isGzip } from "./gzip.ts";
 * isGzip(new Uint8Array([0x1f, 0x8b, 8])); // true
 * ```
 */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decompresses a gzip stream; a cut-off stream is a `truncated` fault, any
 * other corruption a `bad_gzip` fault, both naming `file`.
 */
export function gunzip(bytes: Uint8Array, file: string): Uint8Array {
  try {
    const out = gunzipSync(bytes);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "Z_BUF_ERROR") {
      throw new DataError(file, "truncated", "gzip stream ends early", {
        cause: e,
      });
    }
    throw new DataError(file, "bad_gzip", `corrupt gzip stream: ${e}`, {
      cause: e,
    });
  }
}
