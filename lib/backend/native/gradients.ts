/**
 * Replacing a kernel's gradient on the wasm backend only. tfjs registers
 * gradients per kernel name for every backend; {@linkcode overrideGradient}
 * installs one that tries a faster formulation first and falls back to the
 * original gradient (unchanged) whenever that formulation declines: on other
 * backends, with native kernels off, or for inputs it does not handle.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { runtime } from "./runtime.ts";

/** A faster gradient: the gradient map, or undefined to use the original. */
export type FastGradient = (
  dy: tf.Tensor,
  saved: tf.Tensor[],
  attrs: tf.NamedAttrMap,
) => Record<string, () => tf.Tensor> | undefined;

const installed = new Map<string, { original: tf.GradConfig; mine: tf.GradConfig }>();

/** True when the wasm backend is active and the native kernels are on. */
export function onNativeWasm(): boolean {
  return runtime.enabled && tf.getBackend() === "wasm";
}

/** Installs `fast` as the gradient of `kernelName` on the native wasm path (idempotent). */
export function overrideGradient(kernelName: string, fast: FastGradient): void {
  const current = tf.getGradient(kernelName);
  if (current === undefined || current === installed.get(kernelName)?.mine) return;
  const original = current;
  const mine: tf.GradConfig = {
    ...original,
    gradFunc: (dy, saved, attrs) => {
      if (onNativeWasm() && !Array.isArray(dy)) {
        const g = fast(dy, saved, attrs);
        if (g !== undefined) return g;
      }
      return original.gradFunc(dy, saved, attrs);
    },
  };
  tf.registerGradient(mine);
  installed.set(kernelName, { original, mine });
}

/** Restores every original gradient replaced by {@linkcode overrideGradient}. */
export function restoreGradients(): void {
  for (const [name, { original, mine }] of installed) {
    if (tf.getGradient(name) === mine) tf.registerGradient(original);
  }
  installed.clear();
}
