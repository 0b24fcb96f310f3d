/**
 * Losses on the logits that the compiled training step (compiled_step.ts)
 * computes in JavaScript on the logits in the wasm heap: each returns its
 * value and writes its gradient with respect to the logits.
 *
 * @module
 */

/**
 * A loss on the logits `z` ([n, k], row-major) computed in JavaScript: returns
 * its value and writes d loss / d z into `grad` (same layout).
 */
export type LogitsLoss = ((z: Float32Array, grad: Float32Array, n: number, k: number) => number) & {
  /** Throws on bad targets for [n, k] logits; called before the step changes anything. */
  check?: (n: number, k: number) => void;
};

/**
 * Mean softmax cross-entropy against integer `labels` (PyTorch's
 * `F.cross_entropy`); gradient (softmax − onehot)/n. A label that is not a
 * class index is a RangeError naming it.
 */
export function crossEntropyLoss(labels: ArrayLike<number>): LogitsLoss {
  const check = (n: number, k: number) => {
    if (labels.length !== n) throw new RangeError(`${labels.length} labels for a batch of ${n}`);
    for (let i = 0; i < n; i++) {
      const label = labels[i];
      if (!(Number.isInteger(label) && label >= 0 && label < k)) {
        throw new RangeError(`label ${label} of sample ${i} is not a class index in [0, ${k})`);
      }
    }
  };
  const loss = (z: Float32Array, grad: Float32Array, n: number, k: number) => {
    check(n, k);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const row = i * k, label = labels[i];
      let max = -Infinity;
      for (let j = 0; j < k; j++) max = Math.max(max, z[row + j]);
      let sum = 0;
      for (let j = 0; j < k; j++) sum += Math.exp(z[row + j] - max);
      const lse = max + Math.log(sum);
      total += lse - z[row + label];
      for (let j = 0; j < k; j++) grad[row + j] = (Math.exp(z[row + j] - lse) - (j === label ? 1 : 0)) / n;
    }
    return total / n;
  };
  return Object.assign(loss, { check });
}

/**
 * Mean absolute difference to `target` ([n, k], row-major): DFME's clone loss.
 * Gradient ±1/(n·k), −1 where equal, as tfjs differentiates `abs`.
 */
export function l1Loss(target: ArrayLike<number>): LogitsLoss {
  const check = (n: number, k: number) => {
    if (target.length !== n * k) throw new RangeError(`a target of ${target.length} values for [${n}, ${k}] logits`);
  };
  const loss = (z: Float32Array, grad: Float32Array, n: number, k: number) => {
    check(n, k);
    const scale = 1 / (n * k);
    let total = 0;
    for (let i = 0; i < n * k; i++) {
      const diff = z[i] - target[i];
      total += Math.abs(diff);
      grad[i] = diff > 0 ? scale : -scale;
    }
    return total * scale;
  };
  return Object.assign(loss, { check });
}

/**
 * Mean soft cross-entropy against target distributions `targets` ([n, k]):
 * `−Σ t·log softmax(z) / n` (Knockoff's transfer-set loss, tfjs's
 * `losses.softmaxCrossEntropy` on one-hot targets); gradient
 * `(softmax(z)·Σt − t)/n`. The KL divergence to `t` has the same gradient (it
 * differs by t's entropy, a constant).
 */
export function softCrossEntropyLoss(targets: ArrayLike<number>): LogitsLoss {
  const check = (n: number, k: number) => {
    if (targets.length !== n * k) {
      throw new RangeError(`targets of ${targets.length} values for [${n}, ${k}] logits`);
    }
  };
  const loss = (z: Float32Array, grad: Float32Array, n: number, k: number) => {
    check(n, k);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const row = i * k;
      let max = -Infinity, mass = 0;
      for (let j = 0; j < k; j++) {
        max = Math.max(max, z[row + j]);
        mass += targets[row + j];
      }
      let sum = 0;
      for (let j = 0; j < k; j++) sum += Math.exp(z[row + j] - max);
      const lse = max + Math.log(sum);
      for (let j = 0; j < k; j++) {
        const t = targets[row + j];
        if (t !== 0) total -= t * (z[row + j] - lse);
        grad[row + j] = (Math.exp(z[row + j] - lse) * mass - t) / n;
      }
    }
    return total / n;
  };
  return Object.assign(loss, { check });
}
