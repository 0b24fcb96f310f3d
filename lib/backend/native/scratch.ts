/**
 * Native scratch memory owned by JS: one buffer, grown as needed and reused
 * by every kernel (kernels run one at a time), with a 64-byte aligned start.
 * ArrayBuffers of this size live outside V8's heap and never move, so the
 * pointer stays valid for as long as the buffer is kept.
 *
 * @module
 */

import { sized } from "./sized_ptr.ts";

let buffer = new Uint8Array(0);
let start = 0;

/** At least `bytes` bytes of 64-byte aligned scratch memory: its native pointer and a view of it. */
export function alignedScratch(bytes: number): { ptr: Deno.PointerObject; view: Uint8Array } {
  if (buffer.length - start < bytes) {
    buffer = new Uint8Array(Math.max(1 << 16, 2 ** Math.ceil(Math.log2(bytes + 64))));
    const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)!);
    start = Number((64n - (BigInt(base) % 64n)) % 64n);
  }
  const ptr = sized(Deno.UnsafePointer.offset(Deno.UnsafePointer.of(buffer)!, start)!, buffer.length - start)!;
  return { ptr, view: buffer.subarray(start) };
}
