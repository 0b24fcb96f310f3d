/**
 * Native pointers that know how many bytes they may reach. Every buffer the
 * native kernels hand to oneDNN is made here ({@linkcode sized},
 * {@linkcode offsetSized}) or by `tensorPtr`, and a plan checks each operand's
 * buffer against the bytes oneDNN reports for that operand's memory
 * descriptor before it runs ({@linkcode checkBuffers}): an undersized buffer
 * is a {@linkcode NativeBufferError} naming the plan, never a write past its end.
 *
 * @example
 * ```ts
 * import { checkBuffers, sized } from "./sized_ptr.ts";
 * const buf = new Float32Array(4);
 * const p = sized(Deno.UnsafePointer.of(buf), buf.byteLength);
 * checkBuffers("copy", [16], [p]); // fine
 * // checkBuffers("copy", [32], [p]) throws NativeBufferError: 16 bytes where oneDNN needs 32
 * ```
 *
 * @module
 */

const bytesOf = new WeakMap<Deno.PointerObject, number>();

/** Records that `ptr` points at `bytes` usable bytes; returns `ptr`. */
export function sized(ptr: Deno.PointerValue, bytes: number): Deno.PointerValue {
  if (ptr !== null) bytesOf.set(ptr, bytes);
  return ptr;
}

/** The usable bytes recorded for `ptr`, or undefined for a pointer made elsewhere. */
export function sizeOf(ptr: Deno.PointerValue): number | undefined {
  return ptr === null ? undefined : bytesOf.get(ptr);
}

/**
 * `ptr + offset` bytes, with what remains of `ptr`'s size (when it has one).
 *
 * @throws {NativeBufferError} when the offset lies past the end of `ptr`'s buffer
 */
export function offsetSized(ptr: Deno.PointerValue, offset: number, what = "a buffer"): Deno.PointerValue {
  if (ptr === null) throw new NativeBufferError(`${what}: a null pointer cannot be offset`);
  const total = bytesOf.get(ptr);
  if (total !== undefined && offset > total) {
    throw new NativeBufferError(`${what}: offset ${offset} lies past the end of its ${total}-byte buffer`);
  }
  const p = Deno.UnsafePointer.offset(ptr, offset);
  return total === undefined ? p : sized(p, total - offset);
}

/** A buffer handed to native code that is smaller than what the code will touch, or that has no known size. */
export class NativeBufferError extends Error {
  /** @param message what was expected and what was found, naming the plan or layer */
  constructor(message: string) {
    super(message);
    this.name = "NativeBufferError";
  }
}

/**
 * Checks each operand pointer of plan `what` against the bytes oneDNN reports
 * for it (`needed[i]`; operands with `skip(i)` true, e.g. buffers the plan
 * owns, are not checked). Every pointer must carry a size.
 *
 * @throws {NativeBufferError} naming the plan and operand when a buffer is
 * smaller than needed, or has no recorded size
 */
export function checkBuffers(
  what: string,
  needed: readonly number[],
  ptrs: readonly Deno.PointerValue[],
  skip: (i: number) => boolean = () => false,
): void {
  if (ptrs.length < needed.length) {
    throw new NativeBufferError(`${what}: ${ptrs.length} buffers given, the plan has ${needed.length} operands`);
  }
  for (let i = 0; i < needed.length; i++) {
    if (skip(i)) continue;
    const have = sizeOf(ptrs[i]);
    if (have === undefined) {
      throw new NativeBufferError(`${what}: operand ${i} is a pointer of unknown size (make it with sized())`);
    }
    if (have < needed[i]) {
      throw new NativeBufferError(
        `${what}: operand ${i} is a buffer of ${have} bytes where oneDNN's memory descriptor needs ${needed[i]}`,
      );
    }
  }
}
