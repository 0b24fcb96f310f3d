/**
 * The oneDNN context of the native kernels ({@linkcode Dnnl}): one CPU engine
 * and stream, the plan cache (plan_cache.ts, plans built by plan_builder.ts),
 * and the scheduling of each problem onto threads: OpenMP's one or all
 * (threads.ts) or two halves, one here and one on the helper thread
 * (helper_thread.ts). Memory descriptors are made by memory_desc.ts.
 *
 * @module
 */
import {
  checkStatus,
  createHandle,
  type DnnlLib,
  ENGINE_CPU,
  ISA_AVX512_BIT,
  type OmpLib,
  STREAM_DEFAULT,
} from "./dnnl_ffi.ts";
import { dnnlDims, type MemoryDesc, memoryDescByStrides, memoryDescByTag, memoryDescBytes } from "./memory_desc.ts";
import type { Plan, PlanSpec, ReorderSpec } from "./plan.ts";
import { PlanBuilder } from "./plan_builder.ts";
import { PlanCache } from "./plan_cache.ts";
import { AdaptiveThreads, OpenMpThreads, type Threading } from "./threads.ts";
import { offsetSized } from "./sized_ptr.ts";
import { type HelperCounts, HelperThread } from "./helper_thread.ts";

/** The engine, stream, plan cache and thread scheduling of one opened oneDNN library. */
export class Dnnl {
  /** The CPU engine. */
  readonly engine: Deno.PointerValue;
  /** The in-order stream every plan runs on. */
  readonly stream: Deno.PointerValue;
  /** Threads OpenMP gives oneDNN when nothing limits it. */
  readonly maxThreads: number;
  private readonly openMp: OpenMpThreads;
  private readonly plans: PlanCache;
  private readonly adaptive: AdaptiveThreads;
  /**
   * When set, problems big enough for several threads always use this many
   * (`MECO_NATIVE_THREADS=N`) instead of the adaptive choice of {@linkcode run}.
   */
  fixedThreads: number | undefined;
  /** Plans run so far (for tests that must know the native path was taken). */
  runCount = 0;
  /** Logs every plan built (with oneDNN's implementation name) when `MECO_NATIVE_DEBUG=1`. */
  debug = false;
  /**
   * Path of the opened libdnnl, for the helper thread; the helper is used when
   * this is set, OpenMP reports more than one processor and `fixedThreads` is unset.
   */
  helperPath: string | undefined;
  /** When false, {@linkcode runAlongside} runs both parts here (for A/B measurements and tests; same results). */
  useHelper = true;
  /**
   * Whether thread-count-invariant work is split over this thread and the
   * helper (see {@linkcode splitInvariant}); `MECO_NATIVE_SPLIT=0` turns it off.
   */
  splitBatch = true;
  private helper: HelperThread | undefined | null;
  /**
   * Whether oneDNN's kernels use AVX-512 (`dnnl_get_effective_cpu_isa`, so
   * `DNNL_MAX_CPU_ISA` caps it): some work is faster outside oneDNN below it.
   */
  readonly avx512: boolean;

  /** @param lib bound libdnnl symbols @param omp bound libgomp symbols, if found @param capacity plans kept */
  constructor(readonly lib: DnnlLib, omp: OmpLib | undefined, readonly capacity = 2048) {
    this.engine = createHandle((o) => lib.dnnl_engine_create(o, ENGINE_CPU, 0n), "dnnl_engine_create");
    this.stream = createHandle((o) => lib.dnnl_stream_create(o, this.engine, STREAM_DEFAULT), "dnnl_stream_create");
    this.openMp = new OpenMpThreads(omp);
    this.maxThreads = this.openMp.max;
    this.plans = new PlanCache(new PlanBuilder(this, this.engine), this.maxThreads, capacity, (key, plan) => {
      if (this.debug) console.error(`oneDNN plan ${key}: ${plan.impl}, ${plan.threads} thread(s)`);
    });
    this.adaptive = new AdaptiveThreads(4 * capacity);
    this.avx512 = (lib.dnnl_get_effective_cpu_isa() & ISA_AVX512_BIT) !== 0;
  }

  /** Throws a `DnnlError` unless `status` is success. */
  check(status: number, call: string): void {
    checkStatus(status, call);
  }

  /** Calls a constructor with an out-parameter and returns the handle it wrote. */
  create(fn: (out: BigUint64Array<ArrayBuffer>) => number, call: string): Deno.PointerValue {
    return createHandle(fn, call);
  }

  /** Sets the OpenMP thread count for the next parallel regions of this thread. */
  setThreads(n: number): void {
    this.openMp.set(n);
  }

  /** A `dnnl_dims_t` holding `xs`. */
  dims(xs: readonly number[]): BigInt64Array<ArrayBuffer> {
    return dnnlDims(xs);
  }

  /** A float32 memory descriptor with logical `dims` and format tag `tag`. */
  mdTag(dims: readonly number[], tag: number): MemoryDesc {
    return memoryDescByTag(this.lib, dims, tag);
  }

  /** A float32 memory descriptor with logical `dims` and element `strides`. */
  mdStrides(dims: readonly number[], strides: readonly number[]): MemoryDesc {
    return memoryDescByStrides(this.lib, dims, strides);
  }

  /** Bytes a buffer of layout `md` must hold: the reach of a strided layout, else oneDNN's size. */
  bytesOf(md: MemoryDesc): number {
    return memoryDescBytes(this.lib, md);
  }

  /** The cached plan for `key`, built by `spec()` on a miss. */
  plan(key: string, spec: () => PlanSpec | { reorder: ReorderSpec }): Plan {
    return this.plans.get(key, spec);
  }

  /**
   * The cached plan that reorders a buffer of layout `src` into one of layout
   * `dst` (both the same logical tensor), adding to what `dst` holds when
   * `accumulate` (oneDNN's sum post-op: dst = reorder(src) + dst, one rounding
   * per element). `run([srcPtr, dstPtr])`.
   */
  reorderPlan(key: string, src: MemoryDesc, dst: MemoryDesc, accumulate: boolean): Plan {
    return this.plan(`reorder|${key}|${accumulate ? "sum" : "set"}`, () => ({ reorder: { src, dst, accumulate } }));
  }

  /** Number of cached plans. */
  get cachedPlans(): number {
    return this.plans.size;
  }

  /** Destroys every cached plan. */
  clear(): void {
    this.plans.clear();
  }

  /**
   * Runs the plan for problem `key` on `ptrs`, with threads as `threading`
   * allows. An `adaptive` problem runs on one thread or on all, whichever has
   * recently been faster for it (see {@linkcode AdaptiveThreads}). A
   * `deterministic` problem, whose rounding depends on the thread count, runs
   * on one thread, so that results never depend on the machine's load.
   * `fixedThreads` (`MECO_NATIVE_THREADS`) overrides both.
   */
  run(key: string, threading: Threading, spec: (threads: number) => PlanSpec, ptrs: Deno.PointerValue[]): void {
    // While the helper runs a posted job, this thread works alone (OpenMP's second thread would compete with it).
    if (threading === "adaptive" && this.asyncPending) threading = "one";
    if (threading !== "adaptive" || this.maxThreads === 1 || this.fixedThreads !== undefined) {
      const threads = threading === "one" ? 1 : Math.min(this.fixedThreads ?? 1, this.maxThreads);
      this.plan(`${key}|${threads}`, () => spec(threads)).run(ptrs);
      return;
    }
    const stats = this.adaptive.start(key);
    const threads = stats.mode === 1 ? this.maxThreads : 1;
    const plan = this.plan(`${key}|${threads}`, () => spec(threads));
    const t0 = performance.now();
    plan.run(ptrs);
    this.adaptive.finish(stats, performance.now() - t0, plan.runs > 1);
  }

  /** Threads the last runs of problem `key` favour (for reports). */
  threadsFor(key: string): number | undefined {
    const all = this.adaptive.favoursAll(key);
    return all === undefined ? undefined : all ? this.maxThreads : 1;
  }

  /**
   * True when work whose result does not depend on how it is divided (forward
   * and backward-data convolutions over their batch, element-wise ops over
   * their elements), big enough for two threads, should run as two halves,
   * here and on the helper thread ({@linkcode runBatchSplit}), instead of on
   * OpenMP's threads: on a two-core machine that is faster (no OpenMP
   * fork-join, and OpenMP's waiting threads no longer compete with the
   * helper's half of a weight gradient), and a busy core costs nothing more
   * than one thread would. With more cores OpenMP's adaptive choice over all of
   * them is kept.
   */
  get splitInvariant(): boolean {
    return this.splitBatch && this.fixedThreads === undefined && this.maxThreads === 2 &&
      this.helperPath !== undefined && !this.asyncPending;
  }

  /** Threads a `deterministic` problem runs with (see {@linkcode run}). */
  get deterministicThreads(): number {
    return Math.min(this.fixedThreads ?? 1, this.maxThreads);
  }

  /**
   * True when a split reduction should be split (see {@linkcode runAlongside}):
   * unless `fixedThreads` asks for oneDNN's own threading. The split does not
   * depend on the machine, so neither do the results.
   */
  get splitReductions(): boolean {
    return this.fixedThreads === undefined;
  }

  /**
   * Runs `mine()` here and `plan` on `ptrs` on the helper thread at once (see
   * helper_thread.ts), or both here when there is no helper (one processor, a
   * Worker that could not start, `helperPath` unset); returns when both are done.
   * `plan` must own its scratchpad (`PlanSpec.ownScratchpad`).
   */
  runAlongside(plan: Plan, ptrs: Deno.PointerValue[], mine: () => void): void {
    const helper = this.usableHelper();
    if (helper === undefined) {
      mine();
      plan.run(ptrs);
      return;
    }
    helper.runAlongside(plan, ptrs, mine);
  }

  /** The helper thread (started on first use), or undefined where there is none or it is not to be used. */
  private usableHelper(): HelperThread | undefined {
    if (this.helper === undefined) {
      this.helper = this.maxThreads > 1 && this.helperPath !== undefined
        ? HelperThread.start(this.helperPath, this.engine) ?? null
        : null;
    }
    const helper = this.helper;
    return helper === null || helper.failed || !this.useHelper ? undefined : helper;
  }

  /**
   * Starts `plans` (each on its `ptrs`, in order) on the helper thread and
   * returns at once, or runs them here when there is no helper. Until
   * {@linkcode finishAsync} (or the next use of the helper), work that would
   * split with the helper runs on this thread alone, on one thread. The plans
   * must own their scratchpads; their outputs may be read after `finishAsync`.
   * (Fetch them from the cache right before: the cache evicts the least
   * recently used plan, so 2048 other plans would have to be built before
   * these were destroyed under the helper.)
   */
  postAsync(plans: Plan[], ptrs: Deno.PointerValue[][]): void {
    const helper = this.usableHelper();
    if (helper === undefined) plans.forEach((plan, i) => plan.run(ptrs[i]));
    else helper.post(plans, ptrs);
  }

  /** Waits for the job of {@linkcode postAsync} (or runs it here if the helper has not started it). */
  finishAsync(): void {
    this.helper?.finish();
  }

  /** True while a job of {@linkcode postAsync} may still be running. */
  get asyncPending(): boolean {
    return this.helper?.hasPending ?? false;
  }

  /**
   * Runs a problem split along its batch (the first dimension of the operands
   * with a nonzero `sampleBytes`): about the first half of the samples here, the rest on the
   * helper thread (see {@linkcode runAlongside}), each by a one-thread plan of
   * `spec(samples)` that owns its scratchpad. For problems whose samples are
   * independent (forward and backward-data convolutions), the result does not
   * depend on which thread ran which half.
   */
  runBatchSplit(
    key: string,
    n: number,
    spec: (samples: number) => PlanSpec,
    ptrs: Deno.PointerValue[],
    sampleBytes: number[],
    granule = 1,
  ): void {
    // The first part ends on a multiple of `granule` samples (e.g. 16 floats: a cache line).
    const n1 = Math.min(n - 1, Math.ceil(n / 2 / granule) * granule);
    const first = this.plan(`${key}|half_a`, () => ({ ...spec(n1), threads: 1, ownScratchpad: true }));
    const second = this.plan(`${key}|half_b`, () => ({ ...spec(n - n1), threads: 1, ownScratchpad: true }));
    const ptrsB = ptrs.map((p, i) => sampleBytes[i] === 0 ? p : offsetSized(p, n1 * sampleBytes[i], `${key}|half_b`));
    this.runAlongside(second, ptrsB, () => first.run(ptrs));
  }

  /** The helper thread's counters (`HelperThread.counts`); undefined without a helper. */
  get helperCounts(): HelperCounts | undefined {
    return this.helper ? { ...this.helper.counts } : undefined;
  }
}
