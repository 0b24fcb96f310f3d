/**
 * The helper thread's side of {@linkcode HelperThread} (helper_thread.ts): a
 * `node:worker_threads` Worker that opens the same libdnnl (the process shares
 * its address space, so the main thread's primitives, memory objects and
 * tensors are valid here), keeps OpenMP to one thread on this OS thread, and
 * runs one posted job at a time on a stream of its own.
 *
 * Job layout (int64 slots after the control words): `[nMem, (mem, ptr) × nMem,
 * nStep, (prim, nargs, argsAddress) × nStep]`.
 *
 * @module
 */
import { workerData } from "node:worker_threads";
import { CTL, JOB_OFFSET, JOB_SLOTS, STATE } from "./helper_protocol.ts";

const { sab, path, engine } = workerData as { sab: SharedArrayBuffer; path: string; engine: bigint };
const ctl = new Int32Array(sab, 0, CTL.words);
const job = new BigInt64Array(sab, JOB_OFFSET, JOB_SLOTS);

function fail(): never {
  Atomics.store(ctl, CTL.ready, -1);
  Atomics.notify(ctl, CTL.ready);
  throw new Error("oneDNN helper thread could not start");
}

const SYMBOLS = {
  dnnl_stream_create: { parameters: ["buffer", "pointer", "u32"], result: "i32" },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_primitive_execute: { parameters: ["pointer", "pointer", "i32", "pointer"], result: "i32" },
} as const;
let lib: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
try {
  lib = Deno.dlopen(path, SYMBOLS).symbols;
  try {
    Deno.dlopen("libgomp.so.1", { omp_set_num_threads: { parameters: ["i32"], result: "void" } })
      .symbols.omp_set_num_threads(1);
  } catch {
    // No libgomp: oneDNN was not built with OpenMP and runs this thread's work on it alone anyway.
  }
} catch {
  fail();
}
const out = new BigUint64Array(1);
if (lib.dnnl_stream_create(out, Deno.UnsafePointer.create(engine), 1) !== 0) fail();
const stream = Deno.UnsafePointer.create(out[0]);
const P = (v: bigint) => Deno.UnsafePointer.create(v);

/** Runs the posted job (or, `empty`, none); returns 0 or the first failing oneDNN status. */
function runJob(empty = false): number {
  let k = 0;
  const nMem = empty ? 0 : Number(job[k++]);
  for (let i = 0; i < nMem; i++, k += 2) {
    const s = lib.dnnl_memory_set_data_handle(P(job[k]), P(job[k + 1]));
    if (s !== 0) return s;
  }
  const nStep = empty ? 0 : Number(job[k++]);
  for (let i = 0; i < nStep; i++, k += 3) {
    const s = lib.dnnl_primitive_execute(P(job[k]), stream, Number(job[k + 1]), P(job[k + 2]));
    if (s !== 0) return s;
  }
  return lib.dnnl_stream_wait(stream);
}

// Let V8 optimise the job loop (and its FFI calls) before the first real job: an empty job is one stream wait.
for (let i = 0; i < 5000; i++) runJob(true);
Atomics.store(ctl, CTL.ready, 1);
Atomics.notify(ctl, CTL.ready);
let seen = Atomics.load(ctl, CTL.seq);
for (;;) {
  Atomics.wait(ctl, CTL.seq, seen);
  seen = Atomics.load(ctl, CTL.seq);
  if (Atomics.compareExchange(ctl, CTL.state, STATE.posted, STATE.helper) !== STATE.posted) continue;
  let status = 5; // runtime_error, should the job throw
  try {
    status = runJob();
  } finally {
    Atomics.store(ctl, CTL.status, status);
    Atomics.store(ctl, CTL.state, STATE.done);
    Atomics.notify(ctl, CTL.state);
  }
}
