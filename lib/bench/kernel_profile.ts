/**
 * Per-kernel time accounting: wraps every kernel registered for a backend so
 * that each call's wall time is added to its kernel's total. The backends here
 * run kernels synchronously, so wall time around the call is the kernel's time.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Milliseconds and call counts per kernel name. */
export type KernelTimes = Map<string, { ms: number; calls: number }>;

/**
 * Starts recording kernel times on `backendName`; call the returned function
 * to stop and restore the original kernels.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * const times: KernelTimes = new Map();
 * const stop = profileKernels(tf.getBackend(), times);
 * tf.tidy(() => tf.matMul(tf.ones([4, 4]), tf.ones([4, 4])));
 * stop();
 * console.log(times.get("BatchMatMul")); // { ms, calls: 1 }
 * ```
 */
export function profileKernels(backendName: string, times: KernelTimes): () => void {
  const originals = tf.getKernelsForBackend(backendName);
  for (const k of originals) {
    const inner = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, backendName);
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        const t = performance.now();
        const out = inner(args);
        const rec = times.get(k.kernelName) ?? { ms: 0, calls: 0 };
        rec.ms += performance.now() - t;
        rec.calls++;
        times.set(k.kernelName, rec);
        return out;
      },
    });
  }
  return () => {
    for (const k of originals) {
      tf.unregisterKernel(k.kernelName, backendName);
      tf.registerKernel(k);
    }
  };
}
