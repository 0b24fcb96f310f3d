/**
 * Process-wide state of the native kernels: the opened oneDNN (if any), the
 * on/off switch, and the rule that sends small problems to the pure-wasm
 * kernels (where one FFI round trip and a thread fork would cost more than the
 * arithmetic).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { Dnnl } from "./dnnl.ts";
import type { Threading } from "./threads.ts";

/** Mutable state shared by the native kernels. */
export const runtime: {
  /** The opened library; undefined until {@linkcode registerNativeKernels} succeeds. */
  dnnl: Dnnl | undefined;
  /** When false every native kernel defers to the kernel it replaced. */
  enabled: boolean;
} = { dnnl: undefined, enabled: true };

/**
 * Multiply-adds below which a convolution or matmul stays on the pure-wasm
 * kernel, and below which a native one runs on one thread. Measured on a
 * 2-core AMD EPYC (see PERF.md).
 */
export const THRESHOLDS = {
  /** Below this many multiply-adds the previous (wasm) kernel is used. */
  minMacs: 1 << 14,
  /** From this many multiply-adds on oneDNN may use every thread (see `Dnnl.run`). */
  parallelMacs: 1 << 20,
};

/** The oneDNN context if native kernels should handle a problem of `macs` multiply-adds. */
export function nativeFor(macs: number): Dnnl | undefined {
  if (!runtime.enabled || runtime.dnnl === undefined || macs < THRESHOLDS.minMacs) return undefined;
  return runtime.dnnl;
}

/**
 * The threading of a problem of `work` multiply-adds (or element operations);
 * `invariant` tells whether its result is the same for any thread count.
 */
export function threading(work: number, invariant: boolean): Threading {
  if (work < THRESHOLDS.parallelMacs) return "one";
  return invariant ? "adaptive" : "deterministic";
}

/** Arguments every tfjs kernel function receives. */
export type KernelArgs = Parameters<tf.KernelFunc>[0];
