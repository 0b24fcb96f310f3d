/**
 * The memory of a compiled training step (compiled_step.ts): every
 * activation, gradient, statistic and scratch buffer as a tensor kept in the
 * wasm heap, allocated once when the step is built, and the native addresses
 * of those buffers and of the model's weights for each run. Also how a
 * value's gradient contributions are gathered: the first is written into the
 * value's gradient, later ones into scratch memory and then added.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { TAG } from "./dnnl_ffi.ts";
import type { Dnnl } from "./dnnl.ts";
import type { MemoryDesc } from "./memory_desc.ts";
import type { Plan } from "./plan.ts";
import { sized } from "./sized_ptr.ts";
import { byteOffsetOf, heapBase, tensorBytes } from "./wasm_ptr.ts";

/** A buffer in the wasm heap owned by a compiled step. */
export interface HeapBuffer {
  /** The tensor holding it (kept until the step is disposed). */
  tensor: tf.Tensor;
  /** Its byte offset in the wasm heap. */
  offset: number;
}

/** A value of the model graph at a known batch size. */
export interface Value {
  /** Its shape, batch first. */
  shape: number[];
  /** Its number of elements. */
  size: number;
  /** Its buffer (the caller's tensor, for the model's input). */
  activation: HeapBuffer;
  /** The buffer of the loss's gradient with respect to it (none for the model's input). */
  gradient: HeapBuffer | undefined;
  /** Gradient contributions per step (one per use). */
  uses: number;
  /** Gradient contributions that arrived so far this step. */
  received: number;
}

function noop(): void {}

/** The buffers of one compiled step and their native addresses. */
export class StepMemory {
  private readonly tensors: tf.Tensor[] = [];
  private readonly weightGradients = new Map<tf.LayerVariable, HeapBuffer>();
  private readonly copyLayouts = new Map<number, MemoryDesc>();
  private base: Deno.PointerObject = null as unknown as Deno.PointerObject;
  /** Scratch memory for gradient contributions and gradients nobody reads (as large as the largest such). */
  scratch: HeapBuffer | undefined;

  /** @param backend the wasm backend whose heap holds the buffers @param dnnl the oneDNN context the step runs on */
  constructor(readonly backend: BackendWasm, readonly dnnl: Dnnl) {}

  /** A new zero-filled buffer of `shape` (only while building: a step must not allocate). */
  alloc(shape: number[], dtype: "float32" | "int32" = "float32"): HeapBuffer {
    const tensor = tf.keep(tf.zeros(shape, dtype));
    this.tensors.push(tensor);
    return { tensor, offset: byteOffsetOf(this.backend, tensor) };
  }

  /** A new buffer for the gradient of weight `w`. */
  allocWeightGradient(w: tf.LayerVariable): HeapBuffer {
    const buffer = this.alloc(w.shape as number[]);
    this.weightGradients.set(w, buffer);
    return buffer;
  }

  /** Makes the scratch buffer `size` floats. */
  allocScratch(size: number): void {
    this.scratch = this.alloc([size]);
  }

  /** Makes the scratch buffer at least as large as `v` (only while building: a step must not allocate). */
  scratchFor(v: Value): HeapBuffer {
    if (this.scratch === undefined || this.scratch.tensor.size < v.size) this.scratch = this.alloc([v.size]);
    return this.scratch;
  }

  /** Reads the heap's address again (after anything that may have grown the heap). */
  refreshBase(): void {
    this.base = heapBase(this.backend);
  }

  /** The wasm heap as floats. */
  heapFloats(): Float32Array {
    return new Float32Array((this.backend.wasm as unknown as { HEAPU8: Uint8Array<ArrayBuffer> }).HEAPU8.buffer);
  }

  /** Native address of a buffer (valid for this step: the heap does not grow while it runs). */
  ptr(buffer: HeapBuffer): Deno.PointerValue {
    return sized(Deno.UnsafePointer.offset(this.base, buffer.offset), tensorBytes(buffer.tensor));
  }

  /** Native address of a variable's current value (the optimizer replaces it every step). */
  weightPtr(v: tf.LayerVariable): Deno.PointerValue {
    const t = v.read();
    return sized(Deno.UnsafePointer.offset(this.base, byteOffsetOf(this.backend, t)), tensorBytes(t));
  }

  /** Native address of the gradient buffer of weight `v`. */
  gradientPtr(v: tf.LayerVariable | undefined | null): Deno.PointerValue {
    return this.ptr(this.weightGradients.get(v!)!);
  }

  /**
   * Where the next gradient contribution to `v` goes, and what to call once it
   * is written: the first one lands in v's gradient, later ones in scratch
   * memory and are then added (one reorder with oneDNN's sum post-op).
   */
  contribution(v: Value): [Deno.PointerValue, () => void] {
    if (v.received++ === 0) return [this.ptr(v.gradient!), noop];
    const scratch = this.ptr(this.scratch!);
    return [scratch, () => this.copyPlan(v.size, true).run([scratch, this.ptr(v.gradient!)])];
  }

  /** Adds (or, as the first contribution, copies) the buffer at `src` into v's gradient. */
  contribute(v: Value, src: Deno.PointerValue): void {
    this.copyPlan(v.size, v.received++ > 0).run([src, this.ptr(v.gradient!)]);
  }

  /**
   * The plan copying (or, `accumulate`, adding) `size` floats. Plans are
   * looked up in the library's cache at every use, never kept here: the cache
   * may evict (and destroy) any plan.
   */
  copyPlan(size: number, accumulate: boolean): Plan {
    let md = this.copyLayouts.get(size);
    if (md === undefined) this.copyLayouts.set(size, md = this.dnnl.mdTag([size], TAG.a));
    return this.dnnl.reorderPlan(`flat|${size}`, md, md, accumulate);
  }

  /** Frees every buffer. */
  dispose(): void {
    tf.dispose(this.tensors);
    this.tensors.length = 0;
  }
}
