/**
 * Native scratch memory owned by JS: one buffer, grown as needed and reused
 * by every kernel (kernels run one at a time), with a 64-byte aligned start.
 * ArrayBuffers of this size live outside V8's heap and never move, so the
 * pointer stays valid for as long as the buffer is kept.
 *
 * @module
 */

import { sized } from "./sized_ptr.ts";

/** One scratch buffer and the offset of its first 64-byte aligned byte. */
interface Pool {
  buffer: Uint8Array;
  start: number;
}

const pools = new Map<string, Pool>();

/**
 * At least `bytes` bytes of 64-byte aligned scratch memory: its native pointer
 * and a view of it. Each `pool` is its own buffer: a kernel's scratch
 * (`"kernel"`, the default) and the staging of misaligned operands by a plan
 * (`"staging"`) never overlap, though the second may run inside the first.
 */
export function alignedScratch(bytes: number, pool = "kernel"): { ptr: Deno.PointerObject; view: Uint8Array } {
  let p = pools.get(pool);
  if (p === undefined || p.buffer.length - p.start < bytes) {
    const buffer = new Uint8Array(Math.max(1 << 16, 2 ** Math.ceil(Math.log2(bytes + 64))));
    const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)!);
    p = { buffer, start: Number((64n - (BigInt(base) % 64n)) % 64n) };
    pools.set(pool, p);
  }
  const ptr = sized(Deno.UnsafePointer.offset(Deno.UnsafePointer.of(p.buffer)!, p.start)!, p.buffer.length - p.start)!;
  return { ptr, view: p.buffer.subarray(p.start) };
}
