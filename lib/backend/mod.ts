/**
 * Compute backends: {@linkcode initBackend} picks tensorflow, webgpu, wasm or
 * cpu and reports why; the wasm backend gets the training kernels tfjs lacks.
 *
 * @example
 * ```ts
 * import { initBackend } from "./lib/backend/mod.ts";
 * const { name, reason } = await initBackend(); // honours MECO_BACKEND
 * ```
 *
 * @module
 */
export { BACKEND_NAMES, BackendError, initBackend } from "./init_backend.ts";
export type { BackendName, BackendReport } from "./init_backend.ts";
export { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from "./wasm_kernels/register.ts";
export {
  type NativeReport,
  nativeReport,
  registerNativeKernels,
  replacedKernel,
  setNativeEnabled,
} from "./native/mod.ts";
