/**
 * Native kernels for the tfjs `wasm` backend: oneDNN 2.6 (`libdnnl.so.2`,
 * Debian package libdnnl2) bound through Deno FFI, reading and writing tensors
 * in place in the wasm heap, plus a few kernels rewritten in TypeScript on the
 * heap where the stock ones copy needlessly. Registered by `initBackend()`
 * (wasm) after the project's wasm training kernels; each native kernel defers
 * to the kernel it replaced for what it does not handle (other dtypes or
 * layouts, problems too small for a native call to pay off), and none is
 * registered with `MECO_NATIVE=0` or without the library or FFI permission.
 *
 * - Convolutions: Conv2D, FusedConv2D (bias + linear/relu/relu6/leakyrelu/elu/sigmoid),
 *   Conv2DBackpropInput, Conv2DBackpropFilter.
 * - Matrix products: BatchMatMul, _FusedMatMul (transposes as strides, batch broadcast).
 * - BatchNorm: FusedBatchNorm and a one-pass gradient; Sum and Mean over leading axes;
 *   broadcasting Add/Sub/Multiply/RealDiv.
 * - Pooling gradients, activations (LeakyRelu, Relu6, Tanh, Sigmoid) with one-pass gradients,
 *   nearest-neighbour resize and its gradient.
 * - On the heap, without oneDNN: copy-free Identity and same-dtype Cast, Tile and Slice by memcpy,
 *   and a Mean gradient that does not fill a JS array.
 * - A compiled training step ({@linkcode CompiledTrainer}): a layers model's forward pass, a loss on
 *   the logits and its backward pass as one list of oneDNN calls, bypassing the tfjs engine; the fused
 *   optimizer updates ({@linkcode SGD_UPDATE}, {@linkcode ADAM_UPDATE}) and training-mode BatchNorm
 *   ({@linkcode BATCH_NORM_TRAIN}).
 * - For profiles: {@linkcode profileCompiledOps}, {@linkcode nativeHelperCounts}, and the size
 *   {@linkcode THRESHOLDS} below which kernels defer to the ones they replaced.
 *
 * `MECO_NATIVE_DEBUG=1` logs each oneDNN primitive built (with oneDNN's
 * implementation name and thread count). See PERF.md for measurements.
 *
 * @example
 * ```ts
 * import { initBackend } from "../mod.ts";
 * const { reason } = await initBackend("wasm");
 * // "wasm (argument): XNNPACK + SIMD, ..., oneDNN 2.6.3 (avx512_core_bf16, 2 threads, GOMP_SPINCOUNT=10000, convolutions split with a helper thread) native convs/matmul"
 * ```
 *
 * @module
 */
export {
  NATIVE_KERNEL_NAMES,
  nativeActive,
  nativeHelperCounts,
  type NativeReport,
  nativeReport,
  registerNativeKernels,
  replacedKernel,
  setNativeEnabled,
} from "./register.ts";
export { THRESHOLDS } from "./runtime.ts";
export type { HelperCounts } from "./helper_thread.ts";
export { compiledStepAvailable, CompiledTrainer, type OpTimes, profileCompiledOps } from "./compiled_step.ts";
export { crossEntropyLoss, l1Loss, type LogitsLoss, softCrossEntropyLoss } from "./logits_loss.ts";
export { compiledStepSupport } from "./model_graph.ts";
export { ADAM_UPDATE, fusedUpdateAvailable, SGD_UPDATE } from "./optimizer_update.ts";
export { BATCH_NORM_TRAIN, batchNormTrainingAvailable } from "./batch_norm_train.ts";
