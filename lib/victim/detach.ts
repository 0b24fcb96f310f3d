/**
 * `detach`: tfjs has no `stopGradient`; this is one.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/**
 * A new tensor holding the same values as `t` (sharing its storage, no copy)
 * that no gradient tape links back to `t`: gradients do not flow through it.
 * It is tracked by the enclosing `tf.tidy` like any other tensor, and `t` may
 * be disposed independently.
 *
 * This is tfjs's own Identity kernel minus the tape record: the backend's
 * reference count of the storage is raised and a tensor is made around it.
 * `t` must live on the current backend.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { detach } from "./detach.ts";
 * const g = tf.grad((x: tf.Tensor) => tf.mul(x, detach(tf.square(x))).sum());
 * g(tf.tensor1d([3])).print(); // [9]: only the outer x is differentiated
 * ```
 */
export function detach<T extends tf.Tensor>(t: T): T {
  const engine = tf.engine();
  engine.backend.incRef(t.dataId);
  return engine.makeTensorFromTensorInfo({ dataId: t.dataId, shape: t.shape, dtype: t.dtype }) as T;
}
