/**
 * The defender's surrogate of the attacker's clone, used by MAD and GRAD, and
 * the per-sample gradient geometry of its fully connected head.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { buildClassifier } from "../models/registry.ts";

/** How a surrogate is made. */
export interface SurrogateSpec {
  /** Architecture name (lib/models/registry.ts). */
  arch: string;
  /** `random`: freshly initialised (the MAD reference); `victim`: a copy of the victim's weights. */
  init: "random" | "victim";
  /** Initialisation seed. */
  seed: number;
  /** Image shape [h, w, c]. */
  imageShape: [number, number, number];
  /** Number of classes. */
  numClasses: number;
}

/** Builds the surrogate (logits out); the caller owns and disposes it. */
export function buildSurrogate(spec: SurrogateSpec, victim: tf.LayersModel): tf.LayersModel {
  const model = buildClassifier(spec.arch, {
    seed: spec.seed,
    inputShape: spec.imageShape,
    classes: spec.numClasses,
  });
  if (spec.init === "victim") {
    const ws = victim.getWeights();
    const mine = model.getWeights();
    const same = ws.length === mine.length && ws.every((w, i) => w.shape.join() === mine[i].shape.join());
    if (!same) {
      model.dispose();
      throw new Error(
        `surrogate_init: victim cannot initialise a '${spec.arch}' surrogate: the victim's weights have other shapes`,
      );
    }
    model.setWeights(ws);
  }
  return model;
}

interface DenseLayer {
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  relu: boolean;
}

/**
 * The trailing run of dense layers of a classifier (its "head") and the
 * sub-model computing the head's input (its "trunk").
 *
 * For a dense layer z = aW + b the per-sample gradient of a loss w.r.t. (W, b)
 * is [a; 1] ⊗ δ with δ = ∂loss/∂z, so per-sample inner products of head
 * gradients are exact and batched: ⟨g_i, g′_i⟩ = Σ_l (‖a_l,i‖² + 1)⟨δ_l,i, δ′_l,i⟩.
 */
export class DenseHead {
  readonly #trunk: tf.LayersModel;
  readonly #layers: DenseLayer[];

  /**
   * Splits `model` into its trunk and its head; throws when the head is empty or has an unsupported activation.
   *
   * @param model a classifier ending in dense layers with relu or linear activations (logits out)
   */
  constructor(model: tf.LayersModel) {
    const dense: tf.layers.Layer[] = [];
    for (let i = model.layers.length - 1; i >= 0; i--) {
      const l = model.layers[i];
      if (l.getClassName() !== "Dense") break;
      dense.unshift(l);
    }
    if (dense.length === 0) throw new Error(`GRAD: surrogate '${model.name}' does not end in a dense layer`);
    this.#layers = dense.map((l, i) => {
      const act = String(l.getConfig().activation ?? "linear");
      const last = i === dense.length - 1;
      if (last ? act !== "linear" : act !== "relu" && act !== "linear") {
        throw new Error(
          `GRAD: surrogate layer '${l.name}' has activation '${act}'; the head supports relu (and linear logits)`,
        );
      }
      const [kernel, bias] = l.weights as tf.LayerVariable[];
      return { kernel, bias: bias ?? null, relu: act === "relu" };
    });
    this.#trunk = tf.model({ inputs: model.inputs, outputs: dense[0].input as tf.SymbolicTensor });
  }

  /**
   * GRAD's coefficients c [n, k]: c_ij = ⟨∇_θ NLL_j(x_i), ∇_θ ℓ(x_i; y_i)⟩ over the
   * head's parameters θ, where NLL_j is the surrogate's loss for class j and
   * ℓ(x; y) = −Σ_j y_j log p_j (the loss an attacker trains on with answer y).
   * For any probability vector ỹ, ⟨∇_θ ℓ(x_i; ỹ_i), ∇_θ ℓ(x_i; y_i)⟩ = ỹ_i · c_i.
   *
   * It is the double backprop of the inner product, written out: δ_l(y) is
   * backpropagated from the logits (p − y), then pushed forward again weighted
   * by ‖a_l‖² + 1 (the transposed Jacobian), giving r; c_ij = p·r − r_j.
   */
  coefficients(x: tf.Tensor4D, y: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const acts: tf.Tensor2D[] = [];
      const masks: (tf.Tensor2D | null)[] = [];
      let a = this.#trunk.apply(x, { training: false }) as tf.Tensor2D;
      for (const l of this.#layers) {
        acts.push(a);
        let z = tf.matMul(a, l.kernel.read() as tf.Tensor2D);
        if (l.bias) z = tf.add(z, l.bias.read());
        masks.push(l.relu ? tf.cast(tf.greater(z, 0), "float32") as tf.Tensor2D : null);
        a = (l.relu ? tf.relu(z) : z) as tf.Tensor2D;
      }
      const p = tf.softmax(a);
      const L = this.#layers.length;
      const deltas: tf.Tensor2D[] = new Array(L);
      deltas[L - 1] = tf.sub(p, y);
      for (let l = L - 2; l >= 0; l--) {
        const back = tf.matMul(deltas[l + 1], this.#layers[l + 1].kernel.read() as tf.Tensor2D, false, true);
        deltas[l] = (masks[l] ? tf.mul(back, masks[l]!) : back) as tf.Tensor2D;
      }
      const weight = (l: number) => tf.add(tf.sum(tf.square(acts[l]), 1, true), this.#layers[l].bias ? 1 : 0);
      let t: tf.Tensor2D = tf.mul(weight(0), deltas[0]);
      for (let l = 0; l < L - 1; l++) {
        const masked = masks[l] ? tf.mul(t, masks[l]!) : t;
        const forward = tf.matMul(masked, this.#layers[l + 1].kernel.read() as tf.Tensor2D);
        t = tf.add(forward, tf.mul(weight(l + 1), deltas[l + 1]));
      }
      return tf.mul(tf.sub(tf.sum(tf.mul(p, t), 1, true), t), gradientMask(p, y)) as tf.Tensor2D;
    });
  }
}

/**
 * Where the surrogate's own probabilities `p` equal the answer `y` to within
 * float32 rounding of two kernel paths (max |p − y| ≤ {@linkcode AGREEMENT_TOLERANCE}),
 * the gradient of ℓ(x; y) vanishes in exact arithmetic and the coefficients
 * are rounding noise: such rows get coefficients 0 (nothing to redirect).
 * Returns the [n, 1] mask, 1 for rows with a gradient.
 */
function gradientMask(p: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D {
  return tf.cast(tf.greater(tf.max(tf.abs(tf.sub(p, y)), 1, true), AGREEMENT_TOLERANCE), "float32") as tf.Tensor2D;
}

/**
 * Probabilities closer than this are the same answer: the softmax of one model computed by two kernel paths (e.g.
 * fused and unfused matmuls, native and wasm kernels) differs by up to ~1e-6; a surrogate that has learnt anything
 * differs from the victim's answers by far more.
 */
export const AGREEMENT_TOLERANCE = 1e-5;

/**
 * GRAD's coefficients over all of `model`'s trainable parameters, per sample:
 * for each image the per-class NLL gradients J [k, P] are taken by k backward
 * passes, then c = J (Jᵀ y) (so ỹ · c = ⟨∇_θ ℓ(x; ỹ), ∇_θ ℓ(x; y)⟩). Exact and
 * costly: k backward passes per query image, the price of a per-sample Jacobian.
 */
export function fullCoefficients(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor2D): tf.Tensor2D {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const [n, k] = y.shape;
  const rows: tf.Tensor1D[] = [];
  for (let i = 0; i < n; i++) {
    rows.push(tf.tidy(() => {
      const xi = tf.slice(x, i, 1);
      const jac: tf.Tensor1D[] = [];
      for (let j = 0; j < k; j++) {
        const { value, grads } = tf.variableGrads(() => {
          const logp = tf.logSoftmax(model.apply(xi, { training: false }) as tf.Tensor2D);
          return tf.neg(tf.squeeze(tf.slice(logp, [0, j], [1, 1])));
        }, vars);
        value.dispose();
        jac.push(tf.concat(vars.map((v) => tf.reshape(grads[v.name], [-1]))) as tf.Tensor1D);
        tf.dispose(Object.values(grads));
      }
      const J = tf.stack(jac) as tf.Tensor2D; // [k, P]
      const gy = tf.matMul(tf.slice(y, [i, 0], [1, k]), J); // [1, P]
      return tf.reshape(tf.matMul(J, gy, false, true), [k]) as tf.Tensor1D;
    }));
  }
  const c = tf.stack(rows) as tf.Tensor2D;
  tf.dispose(rows);
  return tf.tidy(() => {
    const p = tf.softmax(model.apply(x, { training: false }) as tf.Tensor2D) as tf.Tensor2D;
    const masked = tf.mul(c, gradientMask(p, y)) as tf.Tensor2D;
    c.dispose();
    return masked;
  });
}
