/**
 * Registers the training kernels the stock tfjs wasm backend lacks
 * (Conv2DBackpropFilter, both depthwise backprops), runs naively
 * (Conv2DBackpropInput) or gets wrong (MaxPoolGrad), so that every model of
 * the paper trains on wasm.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { conv2DBackpropFilterConfig } from "./conv2d_backprop_filter.ts";
import { conv2DBackpropInputConfig } from "./conv2d_backprop_input.ts";
import { depthwiseBackpropFilterConfig, depthwiseBackpropInputConfig } from "./depthwise_backprop.ts";
import { maxPoolGradConfig } from "./max_pool_grad.ts";

/** The kernels {@linkcode registerWasmTrainingKernels} installs. */
export const WASM_TRAINING_KERNELS: readonly tf.KernelConfig[] = [
  conv2DBackpropFilterConfig,
  conv2DBackpropInputConfig,
  depthwiseBackpropFilterConfig,
  depthwiseBackpropInputConfig,
  maxPoolGradConfig,
];

/**
 * Installs {@linkcode WASM_TRAINING_KERNELS} for the `wasm` backend, replacing
 * any registered under the same name. Idempotent.
 */
export function registerWasmTrainingKernels(): void {
  for (const k of WASM_TRAINING_KERNELS) {
    if (tf.getKernel(k.kernelName, "wasm") === k) continue;
    if (tf.getKernel(k.kernelName, "wasm") !== undefined) tf.unregisterKernel(k.kernelName, "wasm");
    tf.registerKernel(k);
  }
}
