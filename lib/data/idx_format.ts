/**
 * The IDX file format (used by MNIST and Fashion-MNIST): two zero bytes, a
 * type code, a dimension count, the dimensions as big-endian uint32s, then
 * the data in big-endian, row-major order.
 *
 * @module
 */

import { DataError } from "./data_error.ts";

/** IDX element type codes (the third magic byte). */
export const IDX_TYPES = {
  /** unsigned byte */
  u8: 0x08,
  /** signed byte */
  i8: 0x09,
  /** big-endian int16 */
  i16: 0x0b,
  /** big-endian int32 */
  i32: 0x0c,
  /** big-endian float32 */
  f32: 0x0d,
  /** big-endian float64 */
  f64: 0x0e,
} as const;

/** One of the IDX element type codes. */
export type IdxType = (typeof IDX_TYPES)[keyof typeof IDX_TYPES];

/** The typed array an IDX file decodes to. */
export type IdxData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Float32Array
  | Float64Array;

/** A decoded IDX array. */
export interface IdxArray {
  /** Element type code. */
  type: IdxType;
  /** Dimensions, outermost first. */
  dims: number[];
  /** Elements in row-major order (for `u8`, a view into the input bytes). */
  data: IdxData;
}

const ELEMENT_SIZE: Record<IdxType, number> = {
  0x08: 1,
  0x09: 1,
  0x0b: 2,
  0x0c: 4,
  0x0d: 4,
  0x0e: 8,
};

function hex(bytes: Uint8Array, n: number): string {
  return "0x" +
    Array.from(bytes.subarray(0, n), (b) => b.toString(16).padStart(2, "0"))
      .join("");
}

/**
 * Decodes an (already decompressed) IDX file.
 *
 * Faults, all naming `file`: `bad_magic` (first two bytes not zero or unknown
 * type code), `bad_header` (zero dimensions), `truncated` (shorter than the
 * header says), `trailing_bytes` (longer than the header says).
 *
 * @example
 * ```ts
 * import { parseIdx } from "./idx_format.ts";
 * const bytes = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 2, 7, 9]);
 * parseIdx(bytes, "labels.idx").dims; // [2]
 * ```
 */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  if (bytes.length < 4) {
    throw new DataError(file, "truncated", "shorter than the IDX magic", {
      expected: ">= 4 bytes",
      found: `${bytes.length} bytes`,
    });
  }
  const type = bytes[2] as IdxType;
  if (bytes[0] !== 0 || bytes[1] !== 0 || !(type in ELEMENT_SIZE)) {
    throw new DataError(file, "bad_magic", "not an IDX file", {
      expected: "0x0000 then a type code in {08,09,0b,0c,0d,0e}",
      found: hex(bytes, 4),
    });
  }
  const ndims = bytes[3];
  if (ndims === 0) {
    throw new DataError(file, "bad_header", "IDX header has zero dimensions");
  }
  const headerSize = 4 + 4 * ndims;
  if (bytes.length < headerSize) {
    throw new DataError(file, "truncated", "IDX header cut short", {
      expected: `>= ${headerSize} bytes`,
      found: `${bytes.length} bytes`,
    });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let d = 0; d < ndims; d++) {
    const size = view.getUint32(4 + 4 * d, false);
    dims.push(size);
    count *= size;
  }
  const elSize = ELEMENT_SIZE[type];
  const expected = headerSize + count * elSize;
  if (bytes.length < expected) {
    throw new DataError(
      file,
      "truncated",
      `header says dims [${dims.join(", ")}]`,
      { expected: `${expected} bytes`, found: `${bytes.length} bytes` },
    );
  }
  if (bytes.length > expected) {
    throw new DataError(
      file,
      "trailing_bytes",
      `header says dims [${dims.join(", ")}]`,
      { expected: `${expected} bytes`, found: `${bytes.length} bytes` },
    );
  }
  return { type, dims, data: decode(view, headerSize, count, type) };
}

function decode(
  view: DataView,
  offset: number,
  count: number,
  type: IdxType,
): IdxData {
  switch (type) {
    case 0x08:
      return new Uint8Array(view.buffer, view.byteOffset + offset, count);
    case 0x09:
      return new Int8Array(view.buffer, view.byteOffset + offset, count);
    case 0x0b: {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 2 * i);
      return out;
    }
    case 0x0c: {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(offset + 4 * i);
      return out;
    }
    case 0x0d: {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i);
      return out;
    }
    case 0x0e: {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(offset + 8 * i);
      return out;
    }
  }
}
