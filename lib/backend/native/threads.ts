/**
 * Threads of the native kernels: how a problem may use them
 * ({@linkcode Threading}), OpenMP's thread count on this OS thread
 * ({@linkcode OpenMpThreads}), and the adaptive choice between one thread and
 * all of them per problem ({@linkcode AdaptiveThreads}), which `Dnnl.run`
 * follows.
 *
 * @module
 */
import type { OmpLib } from "./dnnl_ffi.ts";

/**
 * How a problem may use threads (see `Dnnl.run`): `one` thread; `adaptive`:
 * one or all, whichever is faster now (the result does not depend on the
 * thread count); `deterministic`: a fixed count, because the result does
 * (oneDNN splits some reductions across threads — weight gradients,
 * batch-norm gradients, matrix products — and the rounding then differs).
 */
export type Threading = "one" | "adaptive" | "deterministic";

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

/** OpenMP's thread count for the parallel regions of this OS thread (one thread without libgomp). */
export class OpenMpThreads {
  /** Threads OpenMP gives oneDNN when nothing limits it. */
  readonly max: number;
  private current: number;

  /** @param omp bound libgomp symbols, if found */
  constructor(private readonly omp: OmpLib | undefined) {
    this.max = omp ? (envThreads() ?? omp.omp_get_num_procs()) : 1;
    // omp_get_max_threads() is this OS thread's current setting, which an earlier Dnnl of the same process (another
    // test module of one `deno test` run) may have lowered; start from the full count.
    omp?.omp_set_num_threads(this.max);
    this.current = this.max;
  }

  /** Sets the OpenMP thread count for the next parallel regions of this thread. */
  set(n: number): void {
    if (n === this.current || this.omp === undefined) return;
    this.omp.omp_set_num_threads(n);
    this.current = n;
  }
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

/** Recent run times of one problem with one thread and with all threads. */
export interface ThreadStats {
  /** The last {@linkcode SAMPLES} run times (ms) with one thread and with all threads; their minimum is the estimate. */
  samples: [single: number[], parallel: number[]];
  calls: number;
  /** While all threads are faster: the call at which one thread is tried again, and the gap to the next try. */
  nextSingle: number;
  singleInterval: number;
  /** The call that last ran on all threads. */
  lastParallel: number;
  /** Value of `AdaptiveThreads.parallelEpoch` when the problem last ran on all threads. */
  epoch: number;
  /** A try in progress: the thread choice being tried (0 one, 1 all) and the sampled runs it still needs. */
  trying: 0 | 1 | -1;
  tryLeft: number;
  /** The choice of the call in progress (0 one thread, 1 all). */
  mode: 0 | 1;
}

/**
 * The adaptive choice of `Dnnl.run` between one thread and all, per problem
 * (by key): on an idle machine all threads win, but when another process
 * holds a core, OpenMP's fork-join waits on a thread that is not scheduled,
 * and one thread is several times faster. Each call is {@linkcode start}ed
 * (which picks the choice) and {@linkcode finish}ed with its run time.
 */
export class AdaptiveThreads {
  private readonly stats = new Map<string, ThreadStats>();
  /** Bumped whenever some problem finds all threads faster again: every problem then retries them. */
  private parallelEpoch = 0;
  /** Calls of a problem between tries of all threads while one is faster (shared by all problems). */
  private parallelInterval = EXPLORE_MIN;

  /** @param maxProblems problems remembered (the oldest is forgotten first) */
  constructor(private readonly maxProblems: number) {}

  /** Starts a call of problem `key`: its record, whose `mode` says whether to run on one thread (0) or all (1). */
  start(key: string): ThreadStats {
    let st = this.stats.get(key);
    if (st === undefined) {
      // Staggered, so that the problems of one training step do not all retry in the same step.
      const nextSingle = EXPLORE_MIN + (this.stats.size % EXPLORE_MIN);
      st = {
        samples: [[], []],
        calls: 0,
        nextSingle,
        singleInterval: EXPLORE_MIN,
        lastParallel: -Infinity,
        epoch: this.parallelEpoch,
        trying: -1,
        tryLeft: 0,
        mode: 0,
      };
      this.stats.set(key, st);
      if (this.stats.size > this.maxProblems) this.stats.delete(this.stats.keys().next().value!);
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
    st.mode = mode;
    return st;
  }

  /**
   * Ends the call {@linkcode start} began, which ran for `ms`; `sampled` is
   * false for a plan's first run, which pays for lazy set-up (scratchpad, page
   * faults) and is not a sample.
   */
  finish(st: ThreadStats, ms: number, sampled: boolean): void {
    const mode = st.mode;
    if (mode === 1) {
      st.lastParallel = st.calls;
      st.epoch = this.parallelEpoch;
    }
    if (!sampled) return;
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

  /** Whether the last runs of problem `key` favour all threads; undefined before both choices were measured. */
  favoursAll(key: string): boolean | undefined {
    const st = this.stats.get(key);
    const single = fastest(st?.samples[0] ?? []), parallel = fastest(st?.samples[1] ?? []);
    if (Number.isNaN(single) || Number.isNaN(parallel)) return undefined;
    return parallel <= single;
  }
}
