/**
 * Classification losses on logits.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/**
 * Mean softmax cross-entropy of `logits` [n, k] against integer `labels` [n]
 * (PyTorch's `F.cross_entropy`).
 */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const k = logits.shape[1];
    const logp = tf.logSoftmax(logits);
    const onehot = tf.oneHot(tf.cast(labels, "int32"), k);
    return tf.neg(tf.sum(tf.mul(onehot, logp))).div(logits.shape[0]) as tf.Scalar;
  });
}
