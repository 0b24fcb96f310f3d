/**
 * A second OS thread for oneDNN: work split in two fixed halves, one run
 * here and one on the helper.
 *
 * oneDNN's own multithreading splits a weight gradient's sum over the batch
 * differently for one thread and for two, so its bits depend on how many
 * threads ran it, and choosing the count by the machine's load (as `Dnnl.run`
 * does for other work) would make training irreproducible. Splitting the
 * batch in two halves ourselves, each half reduced by a one-thread primitive
 * and the halves added in a fixed order, gives the same bits whichever thread
 * runs which half, and whether one thread runs both. On two cores the same
 * split also runs forward and backward-data convolutions (batch halves) and
 * element-wise ops (element halves), which have no reduction across the
 * split, instead of OpenMP's threads.
 *
 * {@linkcode HelperThread.runAlongside} runs one half here while the helper
 * runs the other; if the helper has not picked its half up by the time this
 * thread is done with its own (its core busy with another process), this
 * thread takes it back and runs it itself, so a busy machine costs no more
 * than one thread would, with no spinning and no barrier.
 *
 * The helper is a `node:worker_threads` Worker (unref'd: it never keeps the
 * process alive) that blocks in `Atomics.wait` between jobs; a job is a list
 * of oneDNN calls (point memory objects at data, execute primitives) written
 * into a SharedArrayBuffer as addresses, run on the helper's own stream.
 * Plans it runs own their scratchpad (oneDNN's user scratchpad mode), so
 * nothing of oneDNN's is shared between two plans that run at once.
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import { DnnlError } from "./dnnl_ffi.ts";
import type { Plan } from "./plan.ts";
import { CTL, JOB_OFFSET, JOB_SLOTS, STATE } from "./helper_protocol.ts";

/** How long the main thread waits for a job the helper took before it calls the helper dead. */
const HELPER_TIMEOUT_MS = 120_000;

const addr = (p: Deno.PointerValue): bigint => BigInt(Deno.UnsafePointer.value(p));

/** What the helper thread and this thread did, for tests and profiles. */
export interface HelperCounts {
  /** Jobs the helper ran. */
  helper: number;
  /** Jobs this thread took back (or ran itself because the helper was not ready). */
  main: number;
  /** Milliseconds this thread spent on its own parts of split work. */
  mineMs: number;
  /** Milliseconds this thread then waited for the helper's parts. */
  joinMs: number;
  /** How often the helper had finished its part first. */
  doneBeforeJoin: number;
  /** Milliseconds spent waiting for posted jobs (`HelperThread.post`). */
  postedJoinMs: number;
}

/** The main thread's handle on the helper thread. */
export class HelperThread {
  private readonly ctl: Int32Array<SharedArrayBuffer>;
  private readonly job: BigInt64Array<SharedArrayBuffer>;
  /** For tests and profiles: what the helper and this thread did (see {@linkcode HelperCounts}). */
  readonly counts: HelperCounts = { helper: 0, main: 0, mineMs: 0, joinMs: 0, doneBeforeJoin: 0, postedJoinMs: 0 };

  private constructor(sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, CTL.words);
    this.job = new BigInt64Array(sab, JOB_OFFSET, JOB_SLOTS);
  }

  /**
   * Starts the helper on libdnnl at `path` (already opened by this process)
   * for `engine`; undefined when a Worker cannot be made. The helper becomes
   * ready a few milliseconds later; until then every job runs here.
   */
  static start(path: string, engine: Deno.PointerValue): HelperThread | undefined {
    const sab = new SharedArrayBuffer(JOB_OFFSET + 8 * JOB_SLOTS);
    const h = new HelperThread(sab);
    try {
      const w = new Worker(new URL("./helper_worker.ts", import.meta.url), {
        workerData: { sab, path, engine: addr(engine) },
      });
      w.unref();
      w.on("error", () => Atomics.store(h.ctl, CTL.ready, -1));
    } catch {
      return undefined;
    }
    return h;
  }

  /** True once the helper has opened oneDNN and waits for jobs. */
  get ready(): boolean {
    return Atomics.load(this.ctl, CTL.ready) === 1;
  }

  /** True when the helper failed to start or died. */
  get failed(): boolean {
    return Atomics.load(this.ctl, CTL.ready) === -1;
  }

  /**
   * Runs `mine()` on this thread while the helper runs `plan` on `ptrs`
   * (taking the plan back if the helper has not started it when `mine`
   * returns); returns when both are done. `plan` must not be run elsewhere
   * meanwhile and must own its scratchpad.
   */
  runAlongside(plan: Plan, ptrs: Deno.PointerValue[], mine: () => void): void {
    this.post([plan], [ptrs]); // runs it here at once when it cannot be posted
    if (this.pending === undefined) {
      mine();
      return;
    }
    const t0 = performance.now();
    try {
      mine();
    } finally {
      this.counts.mineMs += performance.now() - t0;
      this.finish("joinMs");
    }
  }

  /** The job {@linkcode post} left running, if any. */
  private pending: { plans: Plan[]; ptrs: Deno.PointerValue[][] } | undefined;

  /**
   * Posts `plans` (each run on its `ptrs`, in order) as one job for the helper
   * and returns at once, so that this thread can go on with other work;
   * {@linkcode finish} (called by the next post or `runAlongside`, or by the
   * caller before it reads the results) waits for the job, or runs it here if
   * the helper has not started it. The plans must own their scratchpads and
   * must not run elsewhere until the job is finished.
   */
  post(plans: Plan[], ptrs: Deno.PointerValue[][]): void {
    this.finish();
    plans.forEach((p, i) => p.checkBuffers(ptrs[i]));
    // A plan whose operands must be staged (aligned copies, see Plan.alignment) runs here, where run() stages them.
    const staged = plans.some((p, i) => p.needsStaging(ptrs[i]));
    if (staged || !this.ready || !this.encode(plans, ptrs)) {
      plans.forEach((p, i) => p.run(ptrs[i]));
      this.counts.main++;
      return;
    }
    const ctl = this.ctl;
    Atomics.store(ctl, CTL.state, STATE.posted);
    Atomics.add(ctl, CTL.seq, 1);
    Atomics.notify(ctl, CTL.seq);
    this.pending = { plans, ptrs };
  }

  /** True while a job of {@linkcode post} is not finished. */
  get hasPending(): boolean {
    return this.pending !== undefined;
  }

  /**
   * Finishes the job {@linkcode post} left (see there); returns at once when
   * there is none. The wait is counted in `counts[waited]`.
   */
  finish(waited: "joinMs" | "postedJoinMs" = "postedJoinMs"): void {
    const job = this.pending;
    if (job === undefined) return;
    this.pending = undefined;
    const ctl = this.ctl;
    if (Atomics.compareExchange(ctl, CTL.state, STATE.posted, STATE.main) === STATE.posted) {
      Atomics.store(ctl, CTL.state, STATE.idle);
      this.counts.main++;
      job.plans.forEach((p, i) => p.run(job.ptrs[i]));
      return;
    }
    this.counts.helper++;
    for (const p of job.plans) p.noteRun();
    if (Atomics.load(ctl, CTL.state) === STATE.done) this.counts.doneBeforeJoin++;
    const t1 = performance.now();
    this.join();
    this.counts[waited] += performance.now() - t1;
  }

  private join(): void {
    const ctl = this.ctl;
    const t0 = performance.now();
    while (Atomics.load(ctl, CTL.state) === STATE.helper) {
      Atomics.wait(ctl, CTL.state, STATE.helper, 1000);
      if (performance.now() - t0 > HELPER_TIMEOUT_MS) {
        Atomics.store(ctl, CTL.ready, -1);
        throw new Error(`oneDNN helper thread did not finish a job in ${HELPER_TIMEOUT_MS / 1000} s`);
      }
    }
    const status = Atomics.load(ctl, CTL.status);
    Atomics.store(ctl, CTL.state, STATE.idle);
    if (status !== 0) throw new DnnlError("dnnl_primitive_execute (helper thread)", status);
  }

  /** Writes the job running each of `plans` on its `ptrs`, in order; false when it does not fit. */
  private encode(plans: Plan[], ptrs: Deno.PointerValue[][]): boolean {
    let nMem = 0, nStep = 0;
    for (const plan of plans) {
      for (const m of plan.userMemories) if (m !== null) nMem++;
      nStep += plan.executions.length;
    }
    if (2 + 2 * nMem + 3 * nStep > JOB_SLOTS) return false;
    const job = this.job;
    let k = 0;
    job[k++] = BigInt(nMem);
    plans.forEach((plan, j) =>
      plan.userMemories.forEach((m, i) => {
        if (m === null) return;
        job[k++] = addr(m);
        job[k++] = addr(ptrs[j][i]);
      })
    );
    job[k++] = BigInt(nStep);
    for (const plan of plans) {
      for (const st of plan.executions) {
        job[k++] = addr(st.prim);
        job[k++] = BigInt(st.nargs);
        job[k++] = addr(Deno.UnsafePointer.of(st.args));
      }
    }
    return true;
  }
}
