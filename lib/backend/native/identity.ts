/**
 * Identity and same-dtype Cast without a copy. The stock wasm kernels copy the
 * whole tensor, and tfjs calls Identity (through `clone`) for every tensor a
 * kernel saves for its gradient, and Cast to float32 on float32 tensors in
 * every `moments`, so a training step copied each activation several times.
 * As in the cpu backend, the output here shares the input's data and bumps
 * its reference count; no wasm kernel writes into its inputs, so sharing is
 * safe.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type KernelArgs, runtime } from "./runtime.ts";

function share(backend: BackendWasm, x: tf.TensorInfo): tf.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function identity(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (!runtime.enabled || x == null || x.dtype === "string") return prev(args) as tf.TensorInfo;
    return share(args.backend as BackendWasm, x);
  };
}

function cast(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { dtype } = args.attrs as unknown as tf.CastAttrs;
    if (!runtime.enabled || x == null || x.dtype === "string" || x.dtype !== dtype) return prev(args) as tf.TensorInfo;
    return share(args.backend as BackendWasm, x);
  };
}

/** Zero-copy Identity, deferring to `prev` for strings or when native kernels are off. */
export function identityConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: identity(prev.kernelFunc) as tf.KernelFunc };
}

/** Zero-copy Cast to the same dtype, deferring to `prev` for real conversions. */
export function castConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: cast(prev.kernelFunc) as tf.KernelFunc };
}
