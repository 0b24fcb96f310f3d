/**
 * Classification losses on logits, and the losses a trainer (`makeTrainer`,
 * lib/train/trainer.ts) trains with: each a {@linkcode TrainingLoss} that
 * pairs the loss as tfjs ops (the engine path, differentiated by the tape)
 * with the same loss written for the native compiled step (its value and its
 * gradient on the logits' buffer), so that a trainer can take either path.
 *
 * - {@linkcode CROSS_ENTROPY}: integer labels (supervised training, hard-label attacks).
 * - {@linkcode SOFT_CROSS_ENTROPY}: target distributions (Knockoff's and JBDA's transfer sets).
 * - {@linkcode L1_LOSS}: logit-like targets (DFME's clone loss).
 * - {@linkcode KL_DIVERGENCE}: target distributions, KL(t ‖ softmax(z)) (MAZE, DFME with `loss: kl`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { crossEntropyLoss, l1Loss, type LogitsLoss, softCrossEntropyLoss } from "../backend/mod.ts";

/** Probabilities are clamped at this before their log. */
export const P_FLOOR = 1e-30;

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

/**
 * Cross-entropy of logits [n, k] against target distributions [n, k]
 * (probabilities or one-hot), averaged over the batch: −mean_i Σ_k t_ik log softmax(l_i)_k.
 */
export function softCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.div(tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(logits)))), logits.shape[0]) as tf.Scalar);
}

/** Mean absolute difference between `logits` and `target` [n, k] (PyTorch's `F.l1_loss`). */
export function meanAbsoluteError(logits: tf.Tensor2D, target: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.abs(tf.sub(logits, target))) as tf.Scalar);
}

/**
 * KL(p ‖ softmax(logits)) per sample [n]: Σ_k p (log p − log softmax(logits)),
 * with p clamped at {@linkcode P_FLOOR} inside the log.
 */
export function klPerSample(p: tf.Tensor2D, logits: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.sum(tf.mul(p, tf.sub(tf.log(tf.maximum(p, P_FLOOR)), tf.logSoftmax(logits))), 1));
}

/**
 * A loss a trainer (`makeTrainer`) minimises, against targets of type
 * `T` (integer labels [n] or rows [n, k]).
 */
export interface TrainingLoss<T extends tf.Tensor> {
  /** A short name, for messages. */
  readonly name: string;
  /** The batch loss on `logits` [n, k] as tfjs ops (the engine path differentiates it). */
  engine(logits: tf.Tensor2D, target: T): tf.Scalar;
  /**
   * The same loss for the compiled step on a batch of `n` (see `LogitsLoss` in lib/backend), or undefined
   * where these targets cannot be given to it (then the engine path runs). Absent: the engine path always.
   */
  compiled?(target: T, n: number): LogitsLoss | undefined;
}

/** Mean cross-entropy against integer labels [n] ({@linkcode crossEntropy}). */
export const CROSS_ENTROPY: TrainingLoss<tf.Tensor1D> = {
  name: "cross-entropy",
  engine: crossEntropy,
  compiled: (labels, n) => labels.shape[0] === n ? crossEntropyLoss(labels.dataSync()) : undefined,
};

/** Mean soft cross-entropy against target distributions [n, k] ({@linkcode softCrossEntropy}). */
export const SOFT_CROSS_ENTROPY: TrainingLoss<tf.Tensor2D> = {
  name: "soft cross-entropy",
  engine: softCrossEntropy,
  compiled: (targets) => softCrossEntropyLoss(targets.dataSync()),
};

/** Mean absolute difference to logit-like targets [n, k] ({@linkcode meanAbsoluteError}). */
export const L1_LOSS: TrainingLoss<tf.Tensor2D> = {
  name: "L1",
  engine: meanAbsoluteError,
  compiled: (target) => l1Loss(target.dataSync()),
};

/**
 * KL(t ‖ softmax(z)) averaged over the batch (PyTorch's
 * `F.kl_div(log_softmax(z), t, reduction="batchmean")`) against target
 * distributions [n, k]. Compiled, it is the soft cross-entropy (the same
 * gradient) plus Σ t·log t / n, the targets' negative entropy.
 */
export const KL_DIVERGENCE: TrainingLoss<tf.Tensor2D> = {
  name: "KL divergence",
  engine: (logits, targets) => tf.tidy(() => tf.mean(klPerSample(targets, logits)) as tf.Scalar),
  compiled: (targets) => {
    const t = targets.dataSync();
    const soft = softCrossEntropyLoss(t);
    let selfInformation = 0;
    for (let i = 0; i < t.length; i++) if (t[i] !== 0) selfInformation += t[i] * Math.log(Math.max(t[i], P_FLOOR));
    const loss = (z: Float32Array, grad: Float32Array, n: number, k: number) =>
      soft(z, grad, n, k) + selfInformation / n;
    return Object.assign(loss, { check: soft.check });
  },
};
