/**
 * MD5 checksums (via `node:crypto`) for verifying downloads and pinned files.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { DataError } from "./data_error.ts";

/**
 * The MD5 digest of `bytes` as 32 lowercase hex digits.
 *
 * @example
 * ```ts
 * import { md5Hex } from "./md5.ts";
 * md5Hex(new TextEncoder().encode("abc")); // "900150983cd24fb0d6963f7d28e17f72"
 * ```
 */
export function md5Hex(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}

/** An incremental MD5 hasher for streamed content. */
export interface Md5Hasher {
  /** Feeds the next chunk. */
  update(chunk: Uint8Array): void;
  /** Returns the digest as 32 lowercase hex digits; call once. */
  hex(): string;
}

/** Creates an incremental MD5 hasher. */
export function createMd5(): Md5Hasher {
  const h = createHash("md5");
  return {
    update(chunk: Uint8Array): void {
      h.update(chunk);
    },
    hex(): string {
      return h.digest("hex");
    },
  };
}

/**
 * Throws a `checksum_mismatch` {@linkcode DataError} naming `file` unless the
 * MD5 of `bytes` equals `expected` (case-insensitive).
 */
export function assertMd5(
  bytes: Uint8Array,
  expected: string,
  file: string,
): void {
  const found = md5Hex(bytes);
  if (found !== expected.toLowerCase()) {
    throw new DataError(file, "checksum_mismatch", "MD5 differs", {
      expected: expected.toLowerCase(),
      found,
    });
  }
}
