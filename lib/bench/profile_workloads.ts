/**
 * Per-kernel time of the bench workloads on the active backend, to see where a
 * step's time goes (used for lib/backend/native/PERF.md).
 *
 * Usage: `deno run -A lib/bench/profile_workloads.ts [NAME_PREFIX] [--warmup N] [--reps N] [--top N]`
 * (set `MECO_NATIVE=0` to profile the pure wasm kernels).
 *
 * Prints, per workload, the mean wall time of a step, the time spent inside
 * kernels, and the kernels that took longest (ms per step, calls per step).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend, nativeHelperCounts, type OpTimes, profileCompiledOps } from "../backend/mod.ts";
import { median, WORKLOADS } from "./workloads.ts";
import { type KernelTimes, profileKernels } from "./kernel_profile.ts";
import { parseCli } from "../cli/args.ts";

const CLI = {
  usage: "deno run -A lib/bench/profile_workloads.ts [NAME_PREFIX] [--warmup N] [--reps N] [--top N]",
  description: "Per-kernel time of the bench workloads (MECO_NATIVE=0 profiles the pure wasm kernels).",
  positionals: { name: "NAME_PREFIX", min: 0, max: 1 },
  options: {
    warmup: { type: "integer", min: 0, default: 20, help: "untimed steps first" },
    reps: { type: "integer", min: 1, default: 10, help: "timed steps" },
    top: { type: "integer", min: 1, default: 14, help: "kernels listed per workload" },
  },
} as const;

if (import.meta.main) {
  const { values, positionals } = parseCli(CLI);
  const only = positionals[0] ?? "";
  const { warmup, reps, top } = values;
  const report = await initBackend();
  console.log(report.reason);
  for (const w of WORKLOADS) {
    if (only && !w.name.startsWith(only)) continue;
    const { run, dispose } = w.setup();
    // Warm-up also lets the native kernels settle their thread choice (see Dnnl.run).
    for (let i = 0; i < warmup; i++) run();
    const times: KernelTimes = new Map();
    const stop = profileKernels(tf.getBackend(), times);
    const opTimes: OpTimes = new Map();
    const stopOps = profileCompiledOps(opTimes);
    const steps: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t = performance.now();
      run();
      steps.push(performance.now() - t);
    }
    stop();
    stopOps();
    dispose();
    const rows = [...times.entries()].sort((a, b) => b[1].ms - a[1].ms);
    const inKernels = rows.reduce((s, [, v]) => s + v.ms, 0) / reps;
    const calls = rows.reduce((s, [, v]) => s + v.calls, 0) / reps;
    console.log(
      `== ${w.name}: median ${median(steps).toFixed(1)} ms/step (min ${Math.min(...steps).toFixed(1)}), ` +
        `in kernels ${inKernels.toFixed(1)} ms, ${calls} kernel calls`,
    );
    const h = nativeHelperCounts();
    if (h !== undefined) {
      console.log(
        `  helper thread (whole run): ran ${h.helper} jobs, ${h.main} taken back; waited ${h.joinMs.toFixed(0)} ms ` +
          `for it after ${h.mineMs.toFixed(0)} ms on this thread's halves`,
      );
    }
    for (const [k, v] of rows.slice(0, top)) {
      console.log(
        `  ${k.padEnd(26)} ${(v.ms / reps).toFixed(2).padStart(8)} ms ${String(v.calls / reps).padStart(6)} calls`,
      );
    }
    if (opTimes.size > 0) {
      const ops = [...opTimes.entries()].sort((a, b) => b[1].ms - a[1].ms);
      const total = ops.reduce((s, [, v]) => s + v.ms, 0) / reps;
      console.log(`  compiled step (lib/backend/native/compiled_step.ts), ${total.toFixed(1)} ms per step in ops:`);
      for (const [k, v] of ops.slice(0, top)) {
        console.log(
          `    ${k.padEnd(44)} ${(v.ms / reps).toFixed(2).padStart(8)} ms ${String(v.calls / reps).padStart(6)} ×`,
        );
      }
    }
  }
}
