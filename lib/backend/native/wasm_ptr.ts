/**
 * Native pointers to tensors of the tfjs `wasm` backend. Its tensors live in
 * the wasm linear memory, an ordinary ArrayBuffer, so native code can read and
 * write them in place. A pointer is valid until the heap next grows (which
 * detaches the buffer): allocate every output of a kernel first, then take
 * pointers, then call native code.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { sized } from "./sized_ptr.ts";

let lastBuffer: ArrayBuffer | undefined;
let lastBase: Deno.PointerObject | undefined;

/** The native address of the start of the wasm heap (re-read after every heap growth). */
export function heapBase(backend: BackendWasm): Deno.PointerObject {
  const buffer = (backend.wasm as unknown as { HEAPU8: Uint8Array<ArrayBuffer> }).HEAPU8.buffer;
  if (buffer !== lastBuffer || lastBase === undefined) {
    const p = Deno.UnsafePointer.of(buffer);
    if (p === null) throw new Error("wasm heap has no native address");
    lastBuffer = buffer;
    lastBase = p;
  }
  return lastBase;
}

/** Byte offset of a tensor in the wasm heap. */
export function byteOffsetOf(backend: BackendWasm, t: tf.TensorInfo): number {
  const rec = backend.dataIdMap.get(t.dataId);
  if (rec === undefined || rec.memoryOffset === null) throw new Error("tensor has no data in the wasm heap");
  return rec.memoryOffset as number;
}

/** Bytes of a tensor's data. */
export function tensorBytes(t: tf.TensorInfo): number {
  return tf.util.sizeFromShape(t.shape) * tf.util.bytesPerElement(t.dtype);
}

/** The native address of a tensor's data in the wasm heap, sized to the tensor (see sized_ptr.ts). */
export function tensorPtr(backend: BackendWasm, t: tf.TensorInfo): Deno.PointerValue {
  return sized(Deno.UnsafePointer.offset(heapBase(backend), byteOffsetOf(backend, t)), tensorBytes(t));
}
