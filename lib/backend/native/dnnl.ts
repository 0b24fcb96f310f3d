/**
 * A small object layer over the oneDNN C API: one CPU engine and stream,
 * memory descriptors as JS-owned byte buffers, and {@linkcode Plan}s — a
 * primitive together with the memory objects and layout reorders it needs —
 * cached by a key that names shape and attributes.
 *
 * A plan's user-facing memory objects are created without a buffer; every run
 * points them at the caller's data (tensors in the wasm heap), so nothing is
 * copied unless oneDNN prefers a blocked layout for an operand, in which case
 * the plan owns a library-allocated buffer for it and reorders in or out.
 *
 * @module
 */
import {
  ARG,
  type DnnlLib,
  ENGINE_CPU,
  F32,
  MAX_NDIMS,
  MD_BYTES,
  type OmpLib,
  OP_DESC_BYTES,
  QUERY,
  SCRATCHPAD_USER,
  STATUS,
  STREAM_DEFAULT,
} from "./dnnl_ffi.ts";
import type { Threading } from "./runtime.ts";
import { checkBuffers, offsetSized, sized } from "./sized_ptr.ts";
import { alignedScratch } from "./scratch.ts";
import { HelperThread } from "./helper_thread.ts";

/** A oneDNN call that did not return `dnnl_success`. */
export class DnnlError extends Error {
  /** @param call the C function @param status its `dnnl_status_t` */
  constructor(readonly call: string, readonly status: number) {
    super(`oneDNN ${call} failed: ${STATUS[status] ?? "status"} (${status})`);
    this.name = "DnnlError";
  }
}

/** `DNNL_MEMORY_ALLOCATE`: asks oneDNN to allocate (and own) a memory's buffer. (Made on first use: needs FFI permission.) */
let memoryAllocate: Deno.PointerValue | undefined;

/** A memory descriptor: a `dnnl_memory_desc_t` in a JS buffer. */
export type MemoryDesc = Uint8Array<ArrayBuffer>;

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
export interface Step {
  prim: Deno.PointerValue;
  args: Uint8Array<ArrayBufferLike>;
  nargs: number;
}

/**
 * A primitive ready to run: `run(ptrs)` takes one data pointer per operand,
 * in the order the operands were given to {@linkcode Dnnl.plan}.
 */
export class Plan {
  /** @internal */
  constructor(
    private readonly dnnl: Dnnl,
    private readonly userMems: Deno.PointerValue[],
    private readonly steps: Step[],
    private readonly owned: { mems: Deno.PointerValue[]; prims: Deno.PointerValue[] },
    /** Threads the plan runs with. */
    readonly threads: number,
    /** oneDNN's implementation name, e.g. `brgconv:avx512_core`. */
    readonly impl: string,
    /** Bytes of each operand's buffer, in operand order. */
    readonly bytes: number[],
    /** Layout of each operand's buffer, in operand order (for owned outputs: the primitive's choice). */
    readonly mds: MemoryDesc[],
    /** Per operand, the data pointer of a buffer the plan owns (`Operand.owned`), else undefined. */
    private readonly ownedPtrs: (Deno.PointerValue | undefined)[],
    /** What the plan computes (its cache key), for errors. */
    public name = "oneDNN plan",
    /** Per operand, whether the primitive writes it (copied back after a staged run). */
    private readonly outputs: boolean[] = [],
  ) {
    this.alignment = /sse4/.test(impl) ? 16 : 0;
  }

  /**
   * Byte alignment the implementation needs of its operands (0: none). oneDNN's
   * SSE4.1 kernels use legacy SSE instructions whose memory operands must be
   * 16-byte aligned (`addps (mem)` faults otherwise, e.g. its average pooling),
   * and the wasm heap aligns tensors to 8 bytes only.
   */
  readonly alignment: number;

  /** True when `p` is not aligned as {@linkcode alignment} asks (never when no alignment is needed). */
  private misaligned(p: Deno.PointerValue): boolean {
    return this.alignment > 0 && p !== null &&
      BigInt(Deno.UnsafePointer.value(p)) % BigInt(this.alignment) !== 0n;
  }

  /** True when some operand pointer is not aligned as {@linkcode alignment} asks: `run` then stages them. */
  needsStaging(ptrs: readonly Deno.PointerValue[]): boolean {
    if (this.alignment === 0) return false;
    for (let i = 0; i < this.userMems.length; i++) {
      const p = ptrs[i];
      if (this.userMems[i] !== null && this.misaligned(p)) return true;
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
  get executions(): readonly Step[] {
    return this.steps;
  }

  /** Data pointer of operand `i`'s buffer when the plan owns it (`Operand.owned`). */
  ownedData(i: number): Deno.PointerValue {
    const p = this.ownedPtrs[i];
    if (p === undefined) throw new Error(`operand ${i} of this plan is not owned`);
    return sized(p, this.bytes[i]);
  }

  /** Times the plan has run. */
  runs = 0;

  /** Counts a run made elsewhere (on the helper thread). */
  noteRun(): void {
    this.runs++;
    this.dnnl.runCount++;
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
    ptrs.forEach((p, i) => {
      if (this.userMems[i] === null || !this.misaligned(p)) return;
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
    const d = this.dnnl, lib = d.lib;
    this.runs++;
    d.runCount++;
    d.setThreads(this.threads);
    for (let i = 0; i < ptrs.length; i++) {
      if (this.userMems[i] === null) continue; // owned by the plan
      const s = lib.dnnl_memory_set_data_handle(this.userMems[i], ptrs[i]);
      if (s !== 0) throw new DnnlError("dnnl_memory_set_data_handle", s);
    }
    for (const st of this.steps) {
      const s = lib.dnnl_primitive_execute(st.prim, d.stream, st.nargs, st.args);
      if (s !== 0) throw new DnnlError("dnnl_primitive_execute", s);
    }
    const s = lib.dnnl_stream_wait(d.stream);
    if (s !== 0) throw new DnnlError("dnnl_stream_wait", s);
  }

  /** Frees the primitives and memory objects (and the buffers oneDNN allocated for them). */
  destroy(): void {
    const lib = this.dnnl.lib;
    for (const p of this.owned.prims) lib.dnnl_primitive_destroy(p);
    for (const m of this.owned.mems) lib.dnnl_memory_destroy(m);
    this.owned.prims.length = 0;
    this.owned.mems.length = 0;
  }
}

/** What {@linkcode Dnnl.plan} needs to build a plan. */
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

/** Recent run times of one problem with one thread and with all threads. */
interface ThreadStats {
  /** The last {@linkcode SAMPLES} run times (ms) with one thread and with all threads; their minimum is the estimate. */
  samples: [single: number[], parallel: number[]];
  calls: number;
  /** While all threads are faster: the call at which one thread is tried again, and the gap to the next try. */
  nextSingle: number;
  singleInterval: number;
  /** The call that last ran on all threads. */
  lastParallel: number;
  /** Value of `Dnnl.parallelEpoch` when the problem last ran on all threads. */
  epoch: number;
  /** A try in progress: the thread choice being tried (0 one, 1 all) and the sampled runs it still needs. */
  trying: 0 | 1 | -1;
  tryLeft: number;
}

/**
 * Retrying the slower thread count keeps the choice in step with the
 * machine's load. Trying one thread costs at most about twice the time of a
 * run, so each problem does so on its own, after {@linkcode EXPLORE_MIN}
 * calls and then twice as many while the choice holds, up to
 * {@linkcode EXPLORE_MAX}. Trying all threads on a busy machine can cost ten
 * times a run, so the gap between such tries is shared by all problems: it
 * doubles (up to {@linkcode PARALLEL_MAX}) whenever a try confirms that one
 * thread is faster, and when one finds all threads faster again every
 * problem retries them at its next call. A try is {@linkcode SAMPLES} runs
 * and each choice is judged by the fastest of its last {@linkcode SAMPLES}
 * runs: a single run slowed by a page fault or a preempted thread would
 * otherwise pin a problem to the wrong choice for hundreds of calls, while
 * sustained load slows every run and still flips the choice within
 * {@linkcode SAMPLES} calls.
 */
const EXPLORE_MIN = 8;
const EXPLORE_MAX = 256;
const PARALLEL_MAX = 1024;
const SAMPLES = 3;

/** Fastest of `xs`, NaN when empty. */
function fastest(xs: number[]): number {
  return xs.length === 0 ? NaN : Math.min(...xs);
}

/** The first value of `OMP_NUM_THREADS` when it is a positive integer (OpenMP's own limit), else undefined. */
function envThreads(): number | undefined {
  let v: string | undefined;
  try {
    v = Deno.env.get("OMP_NUM_THREADS");
  } catch {
    return undefined; // no env permission: OpenMP's processor count
  }
  const n = Number(v?.split(",")[0]);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * Operands a primitive writes, by `DNNL_ARG_*` (besides those a spec marks `out`): destinations, gradients, and the
 * workspace (written forward, read backward: copying it back after a backward run changes nothing).
 */
const WRITTEN = new Set<number>([
  ARG.dst,
  ARG.diffSrc,
  ARG.diffWeights,
  ARG.diffScale,
  ARG.diffShift,
  ARG.workspace,
]);

/** Bytes reached by each memory descriptor made by `Dnnl.mdStrides`. */
const stridedExtent = new WeakMap<MemoryDesc, number>();

/** The engine, stream and plan cache of one opened oneDNN library. */
export class Dnnl {
  /** The CPU engine. */
  readonly engine: Deno.PointerValue;
  /** The in-order stream every plan runs on. */
  readonly stream: Deno.PointerValue;
  /** Threads OpenMP gives oneDNN when nothing limits it. */
  readonly maxThreads: number;
  private readonly cache = new Map<string, Plan>();
  private readonly threadStats = new Map<string, ThreadStats>();
  /** Bumped whenever some problem finds all threads faster again: every problem then retries them. */
  private parallelEpoch = 0;
  /** Calls of a problem between tries of all threads while one is faster (shared; see `run`). */
  private parallelInterval = EXPLORE_MIN;
  private readonly out = new BigUint64Array(1);
  private threadsNow: number;
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

  /** @param lib bound libdnnl symbols @param omp bound libgomp symbols, if found @param capacity plans kept */
  constructor(readonly lib: DnnlLib, private readonly omp: OmpLib | undefined, readonly capacity = 2048) {
    this.engine = this.create((o) => lib.dnnl_engine_create(o, ENGINE_CPU, 0n), "dnnl_engine_create");
    this.stream = this.create((o) => lib.dnnl_stream_create(o, this.engine, STREAM_DEFAULT), "dnnl_stream_create");
    this.maxThreads = omp ? (envThreads() ?? omp.omp_get_num_procs()) : 1;
    // omp_get_max_threads() is this OS thread's current setting, which an earlier Dnnl of the same process (another
    // test module of one `deno test` run) may have lowered; start from the full count.
    omp?.omp_set_num_threads(this.maxThreads);
    this.threadsNow = this.maxThreads;
  }

  /** Throws {@linkcode DnnlError} unless `status` is success. */
  check(status: number, call: string): void {
    if (status !== 0) throw new DnnlError(call, status);
  }

  /** Calls a constructor with an out-parameter and returns the handle it wrote. */
  create(fn: (out: BigUint64Array<ArrayBuffer>) => number, call: string): Deno.PointerValue {
    this.out[0] = 0n;
    this.check(fn(this.out as BigUint64Array<ArrayBuffer>), call);
    return Deno.UnsafePointer.create(this.out[0]);
  }

  /** Sets the OpenMP thread count for the next parallel regions of this thread. */
  setThreads(n: number): void {
    if (n === this.threadsNow || this.omp === undefined) return;
    this.omp.omp_set_num_threads(n);
    this.threadsNow = n;
  }

  /** A `dnnl_dims_t` holding `xs`. */
  dims(xs: readonly number[]): BigInt64Array<ArrayBuffer> {
    const d = new BigInt64Array(MAX_NDIMS);
    for (let i = 0; i < xs.length; i++) d[i] = BigInt(xs[i]);
    return d;
  }

  /** A float32 memory descriptor with logical `dims` and format tag `tag`. */
  mdTag(dims: readonly number[], tag: number): MemoryDesc {
    const md = new Uint8Array(MD_BYTES);
    this.check(
      this.lib.dnnl_memory_desc_init_by_tag(md, dims.length, this.dims(dims), F32, tag),
      "dnnl_memory_desc_init_by_tag",
    );
    return md;
  }

  /** A float32 memory descriptor with logical `dims` and element `strides`. */
  mdStrides(dims: readonly number[], strides: readonly number[]): MemoryDesc {
    const md = new Uint8Array(MD_BYTES);
    this.check(
      this.lib.dnnl_memory_desc_init_by_strides(md, dims.length, this.dims(dims), F32, this.dims(strides)),
      "dnnl_memory_desc_init_by_strides",
    );
    // The bytes it reaches from its first element: oneDNN's size counts the whole span of the outermost stride,
    // more than a window into a larger buffer reaches.
    const last = dims.reduce((acc, n, i) => acc + (n - 1) * strides[i], 0);
    stridedExtent.set(md, dims.some((n) => n === 0) ? 0 : 4 * (last + 1));
    return md;
  }

  /** Bytes a buffer of layout `md` must hold: the reach of a strided layout, else oneDNN's size. */
  bytesOf(md: MemoryDesc): number {
    return stridedExtent.get(md) ?? Number(this.lib.dnnl_memory_desc_get_size(md));
  }

  /** The cached plan for `key`, built by `spec()` on a miss. */
  plan(
    key: string,
    spec: () => PlanSpec | { reorder: { src: MemoryDesc; dst: MemoryDesc; accumulate: boolean } },
  ): Plan {
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      // Re-insert: Map order is then least- to most-recently used.
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const sp = spec();
    const p = "reorder" in sp ? this.buildReorder(sp.reorder) : this.build(sp);
    p.name = key;
    if (this.debug) console.error(`oneDNN plan ${key}: ${p.impl}, ${p.threads} thread(s)`);
    this.cache.set(key, p);
    if (this.cache.size > this.capacity) {
      const [oldKey, old] = this.cache.entries().next().value as [string, Plan];
      this.cache.delete(oldKey);
      old.destroy();
    }
    return p;
  }

  /**
   * Runs the plan for problem `key` on `ptrs`, with threads as `threading`
   * allows. An `adaptive` problem runs on one thread or on all, whichever has
   * recently been faster for it: on an idle machine all threads win, but when
   * another process holds a core, OpenMP's fork-join waits on a thread that is
   * not scheduled, and one thread is several times faster. A `deterministic`
   * problem, whose rounding depends on the thread count, runs on one thread,
   * so that results never depend on the machine's load. `fixedThreads`
   * (`MECO_NATIVE_THREADS`) overrides both.
   */
  run(key: string, threading: Threading, spec: (threads: number) => PlanSpec, ptrs: Deno.PointerValue[]): void {
    // While the helper runs a posted job, this thread works alone (OpenMP's second thread would compete with it).
    if (threading === "adaptive" && this.asyncPending) threading = "one";
    if (threading !== "adaptive" || this.maxThreads === 1 || this.fixedThreads !== undefined) {
      const threads = threading === "one" ? 1 : Math.min(this.fixedThreads ?? 1, this.maxThreads);
      this.plan(`${key}|${threads}`, () => spec(threads)).run(ptrs);
      return;
    }
    let st = this.threadStats.get(key);
    if (st === undefined) {
      // Staggered, so that the problems of one training step do not all retry in the same step.
      const nextSingle = EXPLORE_MIN + (this.threadStats.size % EXPLORE_MIN);
      st = {
        samples: [[], []],
        calls: 0,
        nextSingle,
        singleInterval: EXPLORE_MIN,
        lastParallel: -Infinity,
        epoch: this.parallelEpoch,
        trying: -1,
        tryLeft: 0,
      };
      this.threadStats.set(key, st);
      if (this.threadStats.size > 4 * this.capacity) this.threadStats.delete(this.threadStats.keys().next().value!);
    }
    st.calls++;
    let mode: 0 | 1;
    if (st.trying !== -1) mode = st.trying;
    else {
      const single = fastest(st.samples[0]), parallel = fastest(st.samples[1]);
      const parallelDue = st.calls - st.lastParallel >= this.parallelInterval || st.epoch < this.parallelEpoch;
      let start: 0 | 1 | -1 = -1;
      if (Number.isNaN(single)) mode = 0; // measure the cheap choice first
      else if (Number.isNaN(parallel) || parallel > single) [mode, start] = parallelDue ? [1, 1] : [0, -1];
      else [mode, start] = st.calls >= st.nextSingle ? [0, 0] : [1, -1];
      if (start !== -1) {
        st.trying = start;
        st.tryLeft = SAMPLES;
        st.samples[start] = [];
      }
    }
    const threads = mode === 1 ? this.maxThreads : 1;
    const plan = this.plan(`${key}|${threads}`, () => spec(threads));
    const t0 = performance.now();
    plan.run(ptrs);
    const ms = performance.now() - t0;
    if (mode === 1) {
      st.lastParallel = st.calls;
      st.epoch = this.parallelEpoch;
    }
    // A plan's first run pays for lazy set-up (scratchpad, page faults): not a sample.
    if (plan.runs <= 1) return;
    const xs = st.samples[mode];
    xs.push(ms);
    if (xs.length > SAMPLES) xs.shift();
    if (st.trying < 0 || --st.tryLeft > 0) return;
    st.trying = -1;
    const parallelWins = fastest(st.samples[1]) <= fastest(st.samples[0]);
    if (mode === 1) {
      if (parallelWins) {
        this.parallelInterval = EXPLORE_MIN;
        st.epoch = ++this.parallelEpoch;
      } else {
        this.parallelInterval = Math.min(2 * this.parallelInterval, PARALLEL_MAX);
      }
    } else {
      st.singleInterval = parallelWins ? Math.min(2 * st.singleInterval, EXPLORE_MAX) : EXPLORE_MIN;
      st.nextSingle = st.calls + st.singleInterval;
    }
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
    const h = this.usableHelper();
    if (h === undefined) {
      mine();
      plan.run(ptrs);
      return;
    }
    h.runAlongside(plan, ptrs, mine);
  }

  /** The helper thread (started on first use), or undefined where there is none or it is not to be used. */
  private usableHelper(): HelperThread | undefined {
    if (this.helper === undefined) {
      this.helper = this.maxThreads > 1 && this.helperPath !== undefined
        ? HelperThread.start(this.helperPath, this.engine) ?? null
        : null;
    }
    const h = this.helper;
    return h === null || h.failed || !this.useHelper ? undefined : h;
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
    const h = this.usableHelper();
    if (h === undefined) plans.forEach((p, i) => p.run(ptrs[i]));
    else h.post(plans, ptrs);
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
    const a = this.plan(`${key}|half_a`, () => ({ ...spec(n1), threads: 1, ownScratchpad: true }));
    const b = this.plan(`${key}|half_b`, () => ({ ...spec(n - n1), threads: 1, ownScratchpad: true }));
    const ptrsB = ptrs.map((p, i) => sampleBytes[i] === 0 ? p : offsetSized(p, n1 * sampleBytes[i], `${key}|half_b`));
    this.runAlongside(b, ptrsB, () => a.run(ptrs));
  }

  /** The helper thread's counters (`HelperThread.counts`); undefined without a helper. */
  get helperCounts(): HelperThread["counts"] | undefined {
    return this.helper ? { ...this.helper.counts } : undefined;
  }

  /** Threads the last runs of problem `key` favour (for reports). */
  threadsFor(key: string): number | undefined {
    const st = this.threadStats.get(key);
    const single = fastest(st?.samples[0] ?? []), parallel = fastest(st?.samples[1] ?? []);
    if (Number.isNaN(single) || Number.isNaN(parallel)) return undefined;
    return parallel <= single ? this.maxThreads : 1;
  }

  /** Number of cached plans. */
  get cachedPlans(): number {
    return this.cache.size;
  }

  /** Destroys every cached plan. */
  clear(): void {
    for (const p of this.cache.values()) p.destroy();
    this.cache.clear();
  }

  private primitiveDesc(
    opDesc: Uint8Array<ArrayBuffer>,
    attr: Deno.PointerValue,
    hint: Deno.PointerValue,
  ): Deno.PointerValue {
    return this.create(
      (o) => this.lib.dnnl_primitive_desc_create(o, opDesc, attr, this.engine, hint),
      "dnnl_primitive_desc_create",
    );
  }

  private build(spec: PlanSpec): Plan {
    const lib = this.lib;
    const threads = Math.max(1, Math.min(spec.threads ?? this.maxThreads, this.maxThreads));
    this.setThreads(threads);
    const owned = { mems: [] as Deno.PointerValue[], prims: [] as Deno.PointerValue[] };
    const pds: Deno.PointerValue[] = [];
    let attr: Deno.PointerValue = null, postOps: Deno.PointerValue = null, reorderAttr: Deno.PointerValue = null;
    try {
      if ((spec.eltwise !== undefined && spec.eltwise.length > 0) || spec.ownScratchpad) {
        attr = this.create((o) => lib.dnnl_primitive_attr_create(o), "dnnl_primitive_attr_create");
      }
      if (spec.eltwise !== undefined && spec.eltwise.length > 0) {
        postOps = this.create((o) => lib.dnnl_post_ops_create(o), "dnnl_post_ops_create");
        for (const [alg, alpha, beta] of spec.eltwise) {
          this.check(lib.dnnl_post_ops_append_eltwise(postOps, 1, alg, alpha, beta), "dnnl_post_ops_append_eltwise");
        }
        this.check(lib.dnnl_primitive_attr_set_post_ops(attr, postOps), "dnnl_primitive_attr_set_post_ops");
      }
      if (spec.ownScratchpad) {
        reorderAttr = this.create((o) => lib.dnnl_primitive_attr_create(o), "dnnl_primitive_attr_create");
        for (const a of [attr, reorderAttr]) {
          this.check(
            lib.dnnl_primitive_attr_set_scratchpad_mode(a, SCRATCHPAD_USER),
            "dnnl_primitive_attr_set_scratchpad_mode",
          );
        }
      }
      let hintPd: Deno.PointerValue = null;
      if (spec.hint !== undefined) {
        const hd = new Uint8Array(OP_DESC_BYTES);
        spec.hint(hd);
        hintPd = this.primitiveDesc(hd, null, null);
        pds.push(hintPd);
      }
      const od = new Uint8Array(OP_DESC_BYTES);
      spec.init(od);
      const pd = this.primitiveDesc(od, attr, hintPd);
      pds.push(pd);

      const userMems: Deno.PointerValue[] = [];
      const bytes: number[] = [];
      const mds: MemoryDesc[] = [];
      const ownedPtrs: (Deno.PointerValue | undefined)[] = [];
      const before: Step[] = [], after: Step[] = [];
      const mainArgs: [number, Deno.PointerValue][] = [];
      for (const op of spec.operands) {
        if (op.owned) {
          if (op.query === undefined) throw new Error("an owned operand needs a query");
          const chosen = this.queryMd(pd, op.query);
          const mem = this.allocated(chosen, owned);
          userMems.push(null);
          bytes.push(Number(lib.dnnl_memory_desc_get_size(chosen)));
          mds.push(chosen);
          ownedPtrs.push(this.dataOf(mem));
          mainArgs.push([op.arg, mem]);
          continue;
        }
        let user = op.user;
        if (user === undefined) {
          if (op.query === undefined) throw new Error("an operand needs a layout or a query");
          user = this.queryMd(pd, op.query);
        }
        const userMd = user;
        bytes.push(this.bytesOf(userMd));
        mds.push(userMd);
        ownedPtrs.push(undefined);
        const um = this.create((o) => lib.dnnl_memory_create(o, userMd, this.engine, null), "dnnl_memory_create");
        owned.mems.push(um);
        userMems.push(um);
        let mem = um;
        if (op.query !== undefined && op.user !== undefined) {
          const chosen = this.queryMd(pd, op.query);
          if (lib.dnnl_memory_desc_equal(chosen, userMd) === 0) {
            mem = this.allocated(chosen, owned);
            const [src, dst, srcMem, dstMem] = op.out ? [chosen, userMd, mem, um] : [userMd, chosen, um, mem];
            const rpd = this.create(
              (o) => lib.dnnl_reorder_primitive_desc_create(o, src, this.engine, dst, this.engine, reorderAttr),
              "dnnl_reorder_primitive_desc_create",
            );
            pds.push(rpd);
            if (spec.ownScratchpad && this.scratchpadBytes(rpd) > 0) {
              throw new Error("a reorder of a plan with its own scratchpad needs a scratchpad");
            }
            const rp = this.create((o) => lib.dnnl_primitive_create(o, rpd), "dnnl_primitive_create");
            owned.prims.push(rp);
            (op.out ? after : before).push(this.step(rp, [[ARG.from, srcMem], [ARG.to, dstMem]]));
          }
        }
        mainArgs.push([op.arg, mem]);
      }
      if (spec.ownScratchpad && this.scratchpadBytes(pd) > 0) {
        mainArgs.push([ARG.scratchpad, this.allocated(this.queryMd(pd, QUERY.scratchpadMd), owned)]);
      }
      const prim = this.create((o) => lib.dnnl_primitive_create(o, pd), "dnnl_primitive_create");
      owned.prims.push(prim);
      const impl = this.implName(pd);
      const steps = [...before, this.step(prim, mainArgs), ...after];
      const outputs = spec.operands.map((op) => op.out === true || WRITTEN.has(op.arg));
      return new Plan(this, userMems, steps, owned, threads, impl, bytes, mds, ownedPtrs, "oneDNN plan", outputs);
    } catch (e) {
      for (const p of owned.prims) lib.dnnl_primitive_destroy(p);
      for (const m of owned.mems) lib.dnnl_memory_destroy(m);
      throw e;
    } finally {
      for (const pd of pds) lib.dnnl_primitive_desc_destroy(pd);
      if (postOps !== null) lib.dnnl_post_ops_destroy(postOps);
      if (attr !== null) lib.dnnl_primitive_attr_destroy(attr);
      if (reorderAttr !== null) lib.dnnl_primitive_attr_destroy(reorderAttr);
    }
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

  private buildReorder(r: { src: MemoryDesc; dst: MemoryDesc; accumulate: boolean }): Plan {
    const lib = this.lib;
    this.setThreads(1);
    const owned = { mems: [] as Deno.PointerValue[], prims: [] as Deno.PointerValue[] };
    let attr: Deno.PointerValue = null, postOps: Deno.PointerValue = null, rpd: Deno.PointerValue = null;
    try {
      // Its own scratchpad (if it needs one at all), so that it may run on the helper thread too.
      attr = this.create((o) => lib.dnnl_primitive_attr_create(o), "dnnl_primitive_attr_create");
      this.check(
        lib.dnnl_primitive_attr_set_scratchpad_mode(attr, SCRATCHPAD_USER),
        "dnnl_primitive_attr_set_scratchpad_mode",
      );
      if (r.accumulate) {
        postOps = this.create((o) => lib.dnnl_post_ops_create(o), "dnnl_post_ops_create");
        this.check(lib.dnnl_post_ops_append_sum(postOps, 1), "dnnl_post_ops_append_sum");
        this.check(lib.dnnl_primitive_attr_set_post_ops(attr, postOps), "dnnl_primitive_attr_set_post_ops");
      }
      const pd = this.create(
        (o) => lib.dnnl_reorder_primitive_desc_create(o, r.src, this.engine, r.dst, this.engine, attr),
        "dnnl_reorder_primitive_desc_create",
      );
      rpd = pd;
      const mems = [r.src, r.dst].map((md) => {
        const m = this.create((o) => lib.dnnl_memory_create(o, md, this.engine, null), "dnnl_memory_create");
        owned.mems.push(m);
        return m;
      });
      const prim = this.create((o) => lib.dnnl_primitive_create(o, pd), "dnnl_primitive_create");
      owned.prims.push(prim);
      const args: [number, Deno.PointerValue][] = [[ARG.from, mems[0]], [ARG.to, mems[1]]];
      if (this.scratchpadBytes(pd) > 0) {
        args.push([ARG.scratchpad, this.allocated(this.queryMd(pd, QUERY.scratchpadMd), owned)]);
      }
      const step = this.step(prim, args);
      const bytes = [r.src, r.dst].map((md) => this.bytesOf(md));
      return new Plan(
        this,
        mems,
        [step],
        owned,
        1,
        this.implName(pd),
        bytes,
        [r.src, r.dst],
        [undefined, undefined],
        "reorder",
        [
          false,
          true,
        ],
      );
    } catch (e) {
      for (const p of owned.prims) lib.dnnl_primitive_destroy(p);
      for (const m of owned.mems) lib.dnnl_memory_destroy(m);
      throw e;
    } finally {
      if (rpd !== null) lib.dnnl_primitive_desc_destroy(rpd);
      if (postOps !== null) lib.dnnl_post_ops_destroy(postOps);
      if (attr !== null) lib.dnnl_primitive_attr_destroy(attr);
    }
  }

  /** A memory object of layout `md` with a buffer oneDNN allocates (freed with the plan). */
  private allocated(md: MemoryDesc, owned: { mems: Deno.PointerValue[] }): Deno.PointerValue {
    const mem = this.create(
      (o) =>
        this.lib.dnnl_memory_create(
          o,
          md,
          this.engine,
          memoryAllocate ??= Deno.UnsafePointer.create(0xffff_ffff_ffff_ffffn),
        ),
      "dnnl_memory_create",
    );
    owned.mems.push(mem);
    return mem;
  }

  /** The data pointer of a memory object. */
  private dataOf(mem: Deno.PointerValue): Deno.PointerValue {
    return this.create((o) => this.lib.dnnl_memory_get_data_handle(mem, o), "dnnl_memory_get_data_handle");
  }

  /** Bytes of the scratchpad a primitive descriptor asks for (0 in library mode or when it needs none). */
  private scratchpadBytes(pd: Deno.PointerValue): number {
    const p = this.lib.dnnl_primitive_desc_query_md(pd, QUERY.scratchpadMd, 0);
    if (p === null) return 0;
    const md = new Uint8Array(MD_BYTES);
    new Deno.UnsafePointerView(p).copyInto(md);
    return Number(this.lib.dnnl_memory_desc_get_size(md));
  }

  private step(prim: Deno.PointerValue, args: [number, Deno.PointerValue][]): Step {
    const buf = new Uint8Array(new SharedArrayBuffer(16 * args.length));
    const dv = new DataView(buf.buffer);
    args.forEach(([arg, mem], i) => {
      dv.setInt32(16 * i, arg, true);
      dv.setBigUint64(16 * i + 8, BigInt(Deno.UnsafePointer.value(mem)), true);
    });
    return { prim, args: buf, nargs: args.length };
  }

  private queryMd(pd: Deno.PointerValue, what: number): MemoryDesc {
    const p = this.lib.dnnl_primitive_desc_query_md(pd, what, 0);
    if (p === null) throw new DnnlError(`dnnl_primitive_desc_query_md(${what})`, 2);
    const md = new Uint8Array(MD_BYTES);
    new Deno.UnsafePointerView(p).copyInto(md);
    return md;
  }

  private implName(pd: Deno.PointerValue): string {
    const s = this.lib.dnnl_primitive_desc_query(pd, 8, 0, this.out);
    if (s !== 0 || this.out[0] === 0n) return "?";
    return Deno.UnsafePointerView.getCString(Deno.UnsafePointer.create(this.out[0])!);
  }
}
