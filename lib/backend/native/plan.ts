/**
 * {@linkcode Plan}s: a oneDNN primitive together with the memory objects and
 * layout reorders it needs, ready to run on the caller's data pointers, and
 * the {@linkcode PlanSpec} a plan is built from (see plan_builder.ts).
 *
 * A plan's user-facing memory objects are created without a buffer; every run
 * points them at the caller's data (tensors in the wasm heap), so nothing is
 * copied unless oneDNN prefers a blocked layout for an operand, in which case
 * the plan owns a library-allocated buffer for it and reorders in or out.
 *
 * @module
 */
import { DnnlError, type DnnlLib } from "./dnnl_ffi.ts";
import type { MemoryDesc } from "./memory_desc.ts";
import { checkBuffers, sized } from "./sized_ptr.ts";
import { alignedScratch } from "./scratch.ts";

/** One operand of a plan. */
export interface Operand {
  /** `DNNL_ARG_*` of the operand. */
  arg: number;
  /** Layout of the caller's data; when absent, the layout the primitive reports for `query` (e.g. a workspace). */
  user?: MemoryDesc;
  /** `dnnl_query_t` that yields the layout the primitive chose (for operands given as `any`). */
  query?: number;
  /** True for outputs: a reorder, if one is needed, runs after the primitive. */
  out?: boolean;
  /**
   * An output the plan keeps in a buffer of its own, in the layout the primitive
   * chooses for `query` (no reorder): `run` ignores its pointer, {@linkcode Plan.ownedData} gives it.
   */
  owned?: boolean;
}

/**
 * One primitive execution of a plan. `args` (the `dnnl_exec_arg_t` array) is in
 * a SharedArrayBuffer, whose memory never moves, so the helper thread may read
 * it by address.
 */
export interface Execution {
  /** The primitive. */
  prim: Deno.PointerValue;
  /** Its `dnnl_exec_arg_t` array. */
  args: Uint8Array<ArrayBufferLike>;
  /** Entries of `args`. */
  nargs: number;
}

/** What a plan needs to be built (see `PlanBuilder.build`). */
export interface PlanSpec {
  /** Fills `opDesc` (an op-descriptor buffer) for the primitive, e.g. via `dnnl_*_desc_init`. */
  init: (opDesc: Uint8Array<ArrayBuffer>) => void;
  /** The operands, in the order `run` receives their pointers. */
  operands: Operand[];
  /** For backward primitives: fills an op descriptor for the matching forward pass (the hint). */
  hint?: (opDesc: Uint8Array<ArrayBuffer>) => void;
  /** Post-ops: eltwise `[alg, alpha, beta]` applied to the output in order. */
  eltwise?: [number, number, number][];
  /** Threads to use (defaults to all). */
  threads?: number;
  /**
   * The plan owns its primitive's scratchpad (oneDNN's user scratchpad mode)
   * instead of sharing the library's, so that it may run on the helper thread
   * while another plan runs on this one.
   */
  ownScratchpad?: boolean;
}

/**
 * What a reorder plan needs (see `PlanBuilder.buildReorder`): a buffer of layout
 * `src` into one of layout `dst`, added to what `dst` holds when `accumulate`.
 */
export interface ReorderSpec {
  /** Layout of the source buffer. */
  src: MemoryDesc;
  /** Layout of the destination buffer (the same logical tensor). */
  dst: MemoryDesc;
  /** True: dst = reorder(src) + dst (oneDNN's sum post-op); false: dst = reorder(src). */
  accumulate: boolean;
}

/** What a plan runs on: the library, the stream, OpenMP's thread count and a count of runs. */
export interface PlanHost {
  /** The bound libdnnl symbols. */
  readonly lib: DnnlLib;
  /** The in-order stream every plan runs on. */
  readonly stream: Deno.PointerValue;
  /** Sets the OpenMP thread count for the next parallel regions of this thread. */
  setThreads(n: number): void;
  /** Plans run so far. */
  runCount: number;
}

/** The parts of a plan, as `PlanBuilder` makes them. */
export interface PlanParts {
  /** Per operand, the memory object `run` points at the caller's data (null for owned outputs). */
  userMemories: Deno.PointerValue[];
  /** The primitive executions of one run, in order. */
  executions: Execution[];
  /** The primitives and memory objects the plan frees in `destroy`. */
  owned: { mems: Deno.PointerValue[]; prims: Deno.PointerValue[] };
  /** Threads the plan runs with. */
  threads: number;
  /** oneDNN's implementation name. */
  impl: string;
  /** Bytes of each operand's buffer, in operand order. */
  bytes: number[];
  /** Layout of each operand's buffer, in operand order (for owned outputs: the primitive's choice). */
  layouts: MemoryDesc[];
  /** Per operand, the data pointer of a buffer the plan owns (`Operand.owned`), else undefined. */
  ownedPtrs: (Deno.PointerValue | undefined)[];
  /** What the plan computes, for errors. */
  name: string;
  /** Per operand, whether the primitive writes it (copied back after a staged run). */
  outputs: boolean[];
}

/**
 * A primitive ready to run: `run(ptrs)` takes one data pointer per operand,
 * in the order the operands were given to `Dnnl.plan`.
 */
export class Plan {
  private readonly userMems: Deno.PointerValue[];
  private readonly steps: Execution[];
  private readonly owned: { mems: Deno.PointerValue[]; prims: Deno.PointerValue[] };
  /** Threads the plan runs with. */
  readonly threads: number;
  /** oneDNN's implementation name, e.g. `brgconv:avx512_core`. */
  readonly impl: string;
  /** Bytes of each operand's buffer, in operand order. */
  readonly bytes: number[];
  /** Layout of each operand's buffer, in operand order (for owned outputs: the primitive's choice). */
  readonly layouts: MemoryDesc[];
  /** Per operand, the data pointer of a buffer the plan owns (`Operand.owned`), else undefined. */
  private readonly ownedPtrs: (Deno.PointerValue | undefined)[];
  /** What the plan computes (its cache key), for errors. */
  name: string;
  /** Per operand, whether the primitive writes it (copied back after a staged run). */
  private readonly outputs: boolean[];

  /** @internal */
  constructor(private readonly host: PlanHost, parts: PlanParts) {
    this.userMems = parts.userMemories;
    this.steps = parts.executions;
    this.owned = parts.owned;
    this.threads = parts.threads;
    this.impl = parts.impl;
    this.bytes = parts.bytes;
    this.layouts = parts.layouts;
    this.ownedPtrs = parts.ownedPtrs;
    this.name = parts.name;
    this.outputs = parts.outputs;
    this.alignment = /sse4/.test(this.impl) ? 16 : 0;
  }

  /**
   * Byte alignment the implementation needs of its operands (0: none). oneDNN's
   * SSE4.1 kernels use legacy SSE instructions whose memory operands must be
   * 16-byte aligned (`addps (mem)` faults otherwise, e.g. its average pooling),
   * and the wasm heap aligns tensors to 8 bytes only.
   */
  readonly alignment: number;

  /** True when `ptr` is not aligned as {@linkcode alignment} asks (never when no alignment is needed). */
  private misaligned(ptr: Deno.PointerValue): boolean {
    return this.alignment > 0 && ptr !== null &&
      BigInt(Deno.UnsafePointer.value(ptr)) % BigInt(this.alignment) !== 0n;
  }

  /** True when some operand pointer is not aligned as {@linkcode alignment} asks: `run` then stages them. */
  needsStaging(ptrs: readonly Deno.PointerValue[]): boolean {
    if (this.alignment === 0) return false;
    for (let i = 0; i < this.userMems.length; i++) {
      const ptr = ptrs[i];
      if (this.userMems[i] !== null && this.misaligned(ptr)) return true;
    }
    return false;
  }

  /**
   * Checks `ptrs` against the bytes oneDNN reports for each operand's memory descriptor.
   *
   * @throws {NativeBufferError} naming this plan when a buffer is smaller than its operand or has no known size
   */
  checkBuffers(ptrs: readonly Deno.PointerValue[]): void {
    checkBuffers(this.name, this.bytes, ptrs, (i) => this.userMems[i] === null);
  }

  /** The memory objects whose data `run` points at the caller's pointers (null for owned outputs). */
  get userMemories(): readonly Deno.PointerValue[] {
    return this.userMems;
  }

  /** The primitive executions of one run, in order. */
  get executions(): readonly Execution[] {
    return this.steps;
  }

  /** Data pointer of operand `i`'s buffer when the plan owns it (`Operand.owned`). */
  ownedData(i: number): Deno.PointerValue {
    const ptr = this.ownedPtrs[i];
    if (ptr === undefined) throw new Error(`operand ${i} of this plan is not owned`);
    return sized(ptr, this.bytes[i]);
  }

  /** Times the plan has run. */
  runs = 0;

  /** Counts a run made elsewhere (on the helper thread). */
  noteRun(): void {
    this.runs++;
    this.host.runCount++;
  }

  /** Runs the plan on the given data pointers (one per operand; owned operands' are ignored). */
  run(ptrs: Deno.PointerValue[]): void {
    this.checkBuffers(ptrs);
    if (this.needsStaging(ptrs)) this.runStaged(ptrs);
    else this.runDirect(ptrs);
  }

  /**
   * Runs on 64-byte aligned copies of the misaligned operands (see
   * {@linkcode alignment}): each is copied in, the plan runs, and those it
   * writes are copied back.
   */
  private runStaged(ptrs: Deno.PointerValue[]): void {
    const moved: { i: number; off: number }[] = [];
    let total = 0;
    ptrs.forEach((ptr, i) => {
      if (this.userMems[i] === null || !this.misaligned(ptr)) return;
      moved.push({ i, off: total });
      total += Math.ceil(this.bytes[i] / 64) * 64;
    });
    const { ptr: base, view } = alignedScratch(total, "staging");
    const staged = [...ptrs];
    const userBytes = (i: number) => new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptrs[i]!, this.bytes[i]));
    for (const { i, off } of moved) {
      view.set(userBytes(i), off);
      staged[i] = sized(Deno.UnsafePointer.offset(base, off), this.bytes[i]);
    }
    this.runDirect(staged);
    for (const { i, off } of moved) if (this.outputs[i]) userBytes(i).set(view.subarray(off, off + this.bytes[i]));
  }

  private runDirect(ptrs: Deno.PointerValue[]): void {
    const host = this.host, lib = host.lib;
    this.runs++;
    host.runCount++;
    host.setThreads(this.threads);
    for (let i = 0; i < ptrs.length; i++) {
      if (this.userMems[i] === null) continue; // owned by the plan
      const s = lib.dnnl_memory_set_data_handle(this.userMems[i], ptrs[i]);
      if (s !== 0) throw new DnnlError("dnnl_memory_set_data_handle", s);
    }
    for (const step of this.steps) {
      const s = lib.dnnl_primitive_execute(step.prim, host.stream, step.nargs, step.args);
      if (s !== 0) throw new DnnlError("dnnl_primitive_execute", s);
    }
    const s = lib.dnnl_stream_wait(host.stream);
    if (s !== 0) throw new DnnlError("dnnl_stream_wait", s);
  }

  /** Frees the primitives and memory objects (and the buffers oneDNN allocated for them). */
  destroy(): void {
    const lib = this.host.lib;
    for (const prim of this.owned.prims) lib.dnnl_primitive_destroy(prim);
    for (const mem of this.owned.mems) lib.dnnl_memory_destroy(mem);
    this.owned.prims.length = 0;
    this.owned.mems.length = 0;
  }
}
