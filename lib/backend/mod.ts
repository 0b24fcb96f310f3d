/**
 * Compute backends: {@linkcode initBackend} picks tensorflow, webgpu, wasm or
 * cpu and reports why; the wasm backend gets the training kernels tfjs lacks.
 *
 * The rest of the library reaches the native kernels only through this
 * module: the compiled training step ({@linkcode CompiledTrainer} and the
 * losses it computes on the logits), the fused optimizer updates
 * ({@linkcode fusedUpdateAvailable}, {@linkcode SGD_UPDATE},
 * {@linkcode ADAM_UPDATE}) and the fused BatchNorm training kernel
 * ({@linkcode BATCH_NORM_TRAIN}); and, for the benchmarks, the per-op
 * profile of a compiled step ({@linkcode profileCompiledOps}), the helper
 * thread's counters ({@linkcode nativeHelperCounts}) and the size thresholds
 * of the native kernels ({@linkcode THRESHOLDS}).
 *
 * @example
 * ```ts
 * import { initBackend } from "./mod.ts";
 * const { name, reason } = await initBackend(); // honours MECO_BACKEND
 * console.log(name, reason);
 * ```
 *
 * @module
 */
export { BACKEND_NAMES, BackendError, initBackend } from "./init_backend.ts";
export type { BackendName, BackendReport } from "./init_backend.ts";
export { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from "./wasm_kernels/register.ts";
export {
  ADAM_UPDATE,
  BATCH_NORM_TRAIN,
  batchNormTrainingAvailable,
  compiledStepAvailable,
  CompiledTrainer,
  crossEntropyLoss,
  fusedUpdateAvailable,
  type HelperCounts,
  l1Loss,
  type LogitsLoss,
  nativeHelperCounts,
  type NativeReport,
  nativeReport,
  type OpTimes,
  profileCompiledOps,
  registerNativeKernels,
  replacedKernel,
  setNativeEnabled,
  SGD_UPDATE,
  softCrossEntropyLoss,
  THRESHOLDS,
} from "./native/mod.ts";
