/**
 * Fused optimizer updates on the wasm heap. tfjs updates each variable with a
 * chain of element-wise kernels — Adam takes thirteen per variable (moments,
 * square, root, divisions, the step), SGD with momentum and weight decay six —
 * each a full pass and a tensor allocation; a ResNet-18-8x Adam step spent
 * ≈ 800 kernel calls there. These kernels do one pass per variable in
 * TypeScript over the heap (no library needed), returning the new parameter
 * and optimizer state in one call.
 *
 * - {@linkcode ADAM_UPDATE}: `{param, m, v, grad}`, attrs `{beta1, beta2, epsilon, stepSize, rootBc2}` →
 *   `[param′, m′, v′]` with `m′ = β₁m + (1−β₁)g`, `v′ = β₂v + (1−β₂)g²`,
 *   `param′ = param − stepSize · m′ / (√v′ / rootBc2 + ε)` (PyTorch's Adam, bias corrections folded into
 *   `stepSize = lr / (1 − β₁ᵗ)` and `rootBc2 = √(1 − β₂ᵗ)`).
 * - {@linkcode SGD_UPDATE}: `{param, buf, grad}`, attrs `{lr, momentum, weightDecay}` →
 *   `[param′, buf′]` with `d = g + wd·param`, `buf′ = momentum·buf + d`, `param′ = param − lr·buf′`
 *   (PyTorch's SGD without dampening or Nesterov).
 *
 * The pass is WebAssembly SIMD (optimizer_simd.wat: four float32 lanes, float32
 * arithmetic as PyTorch's CPU kernels), instantiated over the tfjs backend's
 * own memory; where that module cannot be instantiated (a threaded tfjs build
 * with shared memory) a TypeScript loop in double precision, rounded once to
 * float32 per output, does the same. Either can differ from the unfused float32
 * chain in the last bits.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type KernelArgs, runtime } from "./runtime.ts";
import { byteOffsetOf } from "./wasm_ptr.ts";
import { OPTIMIZER_SIMD_WASM } from "./optimizer_simd_wasm.ts";
import { bindWasmSimd } from "./wasm_simd.ts";

interface SimdExports {
  adam(
    p: number,
    m: number,
    v: number,
    g: number,
    po: number,
    mo: number,
    vo: number,
    n: number,
    b1: number,
    c1: number,
    b2: number,
    c2: number,
    step: number,
    inv: number,
    eps: number,
  ): void;
  sgd(p: number, b: number, g: number, po: number, bo: number, n: number, lr: number, mom: number, wd: number): void;
}

let simdEnabled = true;

/** Switches the SIMD pass off (TypeScript loops) or back on; for A/B measurements and tests. */
export function setOptimizerSimd(on: boolean): void {
  simdEnabled = on;
}

/** The SIMD kernels bound to `backend`'s memory, or null where they cannot be (then the TS loops run). */
function simd(backend: BackendWasm): SimdExports | null {
  return simdEnabled ? bindWasmSimd<SimdExports>("optimizer_simd", OPTIMIZER_SIMD_WASM, backend) : null;
}

/** Whether the fused updates run as WebAssembly SIMD on `backend` (else as TypeScript loops). */
export function optimizerSimdActive(backend: BackendWasm): boolean {
  return simd(backend) !== null;
}

/** Kernel name of the fused Adam update. */
export const ADAM_UPDATE = "MecoAdamUpdate";
/** Kernel name of the fused SGD (momentum, weight decay) update. */
export const SGD_UPDATE = "MecoSgdUpdate";

function heapF32(backend: BackendWasm): Float32Array {
  return new Float32Array((backend.wasm as unknown as { HEAPU8: Uint8Array<ArrayBuffer> }).HEAPU8.buffer);
}

function adamUpdate(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { param, m, v, grad } = args.inputs as Record<string, tf.TensorInfo>;
  const { beta1, beta2, epsilon, stepSize, rootBc2 } = args.attrs as unknown as Record<string, number>;
  const outs = [param, m, v].map((t) => backend.makeOutput(t.shape, "float32"));
  const n = tf.util.sizeFromShape(param.shape);
  const b1 = beta1, c1 = 1 - beta1, b2 = beta2, c2 = 1 - beta2, inv = 1 / rootBc2;
  const k = simd(backend);
  if (k !== null) {
    const [p, mi, vi, g, po, mo, vo] = [param, m, v, grad, ...outs].map((t) => byteOffsetOf(backend, t));
    k.adam(p, mi, vi, g, po, mo, vo, n, b1, c1, b2, c2, stepSize, inv, epsilon);
    return outs;
  }
  const heap = heapF32(backend); // after every allocation: the view stays valid
  const at = (t: tf.TensorInfo) => byteOffsetOf(backend, t) >>> 2;
  const p = at(param), mi = at(m), vi = at(v), g = at(grad), po = at(outs[0]), mo = at(outs[1]), vo = at(outs[2]);
  for (let i = 0; i < n; i++) {
    const gi = heap[g + i];
    const mn = b1 * heap[mi + i] + c1 * gi;
    const vn = b2 * heap[vi + i] + c2 * gi * gi;
    heap[mo + i] = mn;
    heap[vo + i] = vn;
    heap[po + i] = heap[p + i] - stepSize * mn / (Math.sqrt(vn) * inv + epsilon);
  }
  return outs;
}

function sgdUpdate(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { param, buf, grad } = args.inputs as Record<string, tf.TensorInfo>;
  const { lr, momentum, weightDecay } = args.attrs as unknown as Record<string, number>;
  const outs = [param, buf].map((t) => backend.makeOutput(t.shape, "float32"));
  const n = tf.util.sizeFromShape(param.shape);
  const k = simd(backend);
  if (k !== null) {
    const [p, b, g, po, bo] = [param, buf, grad, ...outs].map((t) => byteOffsetOf(backend, t));
    k.sgd(p, b, g, po, bo, n, lr, momentum, weightDecay);
    return outs;
  }
  const heap = heapF32(backend);
  const at = (t: tf.TensorInfo) => byteOffsetOf(backend, t) >>> 2;
  const p = at(param), b = at(buf), g = at(grad), po = at(outs[0]), bo = at(outs[1]);
  for (let i = 0; i < n; i++) {
    const pi = heap[p + i];
    const bn = momentum * heap[b + i] + (heap[g + i] + weightDecay * pi);
    heap[bo + i] = bn;
    heap[po + i] = pi - lr * bn;
  }
  return outs;
}

/** Registers both kernels on wasm (idempotent). */
export function registerOptimizerKernels(): void {
  if (tf.getKernel(ADAM_UPDATE, "wasm") !== undefined) return;
  tf.registerKernel({ kernelName: ADAM_UPDATE, backendName: "wasm", kernelFunc: adamUpdate as tf.KernelFunc });
  tf.registerKernel({ kernelName: SGD_UPDATE, backendName: "wasm", kernelFunc: sgdUpdate as tf.KernelFunc });
}

/** True when the fused update `kernel` can run now on these float32 tensors. */
export function fusedUpdateAvailable(kernel: string, ...tensors: tf.Tensor[]): boolean {
  return runtime.enabled && tf.getBackend() === "wasm" && tf.getKernel(kernel, "wasm") !== undefined &&
    tensors.every((t) => t.dtype === "float32");
}
