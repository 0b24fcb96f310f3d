/**
 * Stein variational gradient descent (Liu & Wang 2016) as MeCo uses it
 * (paper Eq. 11): a batch of N particles moves toward the worst-case test
 * distribution p(x) ∝ exp(−U(x)), U = −loss, under a Gaussian kernel
 * k(a, b) = exp(−‖a − b‖² / (2σ²)):
 *
 *   x_i ← x_i + (α/N) Σ_j [ k(x_j, x_i) ∇_{x_j} loss(x_j) + ∇_{x_j} k(x_j, x_i) ].
 *
 * The first term drives particles up the loss (smoothed by the kernel); the
 * second, ∇_{x_j} k(x_j, x_i) = k(x_j, x_i)(x_i − x_j)/σ², pushes x_i away from
 * its neighbours. The paper prints Eq. 11 with a minus sign in front of the
 * whole sum, which read literally turns this term into an attraction; its text
 * (and standard SVGD) says it repels, which is what is implemented here.
 *
 * Step size. Read literally, with a fixed α, the step is numerically inert on
 * images: the median-heuristic kernel is ≈ 1/(N+1) between distinct images, so
 * the drive is ≈ g_i/N (and g_i, the per-sample cross-entropy gradient of a
 * trained target, is ~1e-3 per pixel), while the repulsion is ≈ (x_i − x̄)/(Nσ²)
 * with σ² ≈ median‖x_i − x_j‖²/(2 log(N+1)) ≈ 40 for 784-pixel images. At
 * α = 0.01 and N = 128 one step moved MNIST images by an RMS of ~2e-6 per
 * pixel. `step: "rms"` therefore reads α as the RMS displacement per entry of
 * one step: x ← x + α·φ/RMS(φ). This is Eq. 11 with the data transformation
 * rate set for each step to α/RMS(φ): the direction, the balance of drive and
 * repulsion and the relative movement of the particles are Eq. 11's; only the
 * overall length is fixed, as the reference SVGD implementation (Liu & Wang)
 * fixes it by normalising φ with AdaGrad. `step: "rate"` is the literal rate.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Kernel bandwidth: a fixed σ, or the median heuristic. */
export type Bandwidth = number | "median";

/** Options of one SVGD step. */
export interface SvgdOptions {
  /** Step size α: the rate of Eq. 11 (`step: "rate"`) or the RMS displacement per entry (`step: "rms"`). */
  alpha: number;
  /**
   * How α is read: `"rate"` (default): x ← x + α·φ, Eq. 11 literally; `"rms"`:
   * x ← x + α·φ/RMS(φ), so one step moves the particles by an RMS of exactly α
   * per entry (before clipping). A zero φ moves nothing either way.
   */
  step?: "rate" | "rms";
  /** σ of the Gaussian kernel, or "median": 2σ² = median(‖x_i − x_j‖²) / log(N + 1) (Liu & Wang). */
  sigma: Bandwidth;
  /** Clip particles to this range after the step (e.g. the image range [-1, 1]). */
  clip?: [number, number];
}

/** Pairwise squared distances of the rows of `x` [N, D]. */
export function pairwiseSqDist(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const sq = tf.sum(tf.square(x), 1, true); // [N, 1]
    const dot = tf.matMul(x, x, false, true); // [N, N]
    return tf.relu(tf.sub(tf.add(sq, tf.transpose(sq)), tf.mul(dot, 2))) as tf.Tensor2D;
  });
}

/** σ² for `sigma` given the pairwise squared distances (reads them back for the median). */
export function bandwidthSq(d2: tf.Tensor2D, sigma: Bandwidth): number {
  if (sigma !== "median") return sigma * sigma;
  const n = d2.shape[0];
  const v = d2.dataSync();
  const off: number[] = [];
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off.push(v[i * n + j]);
  if (off.length === 0) return 1;
  off.sort((a, b) => a - b);
  const m = off.length >> 1;
  const med = off.length % 2 ? off[m] : (off[m - 1] + off[m]) / 2;
  const s2 = med / (2 * Math.log(n + 1));
  return s2 > 0 ? s2 : 1;
}

/**
 * The SVGD direction φ [N, D] for particles `x` [N, D] with loss gradients
 * `g` [N, D] (∇ log p = ∇ loss): φ_i = (1/N) Σ_j k_ij g_j + k_ij (x_i − x_j)/σ².
 */
export function svgdDirection(x: tf.Tensor2D, g: tf.Tensor2D, sigma: Bandwidth): tf.Tensor2D {
  return tf.tidy(() => {
    const n = x.shape[0];
    const d2 = pairwiseSqDist(x);
    const s2 = bandwidthSq(d2, sigma);
    const k = tf.exp(tf.div(d2, -2 * s2)) as tf.Tensor2D; // symmetric
    const drive = tf.matMul(k, g);
    const repulse = tf.div(tf.sub(tf.mul(x, tf.sum(k, 1, true)), tf.matMul(k, x)), s2);
    return tf.div(tf.add(drive, repulse), n) as tf.Tensor2D;
  });
}

/**
 * One SVGD step on a batch of images (or any [N, ...] tensor): flattens each
 * particle, applies x ← x + α·φ(x) (or α·φ/RMS(φ), see {@linkcode SvgdOptions.step}),
 * clips, and restores the shape.
 *
 * @example
 * ```ts ignore
 * const g = tf.grad((v) => lossSum(v))(x);
 * const x1 = svgdStep(x, g, { alpha: 0.05, step: "rms", sigma: "median", clip: [-1, 1] });
 * ```
 */
export function svgdStep<T extends tf.Tensor>(x: T, gradLoss: T, opts: SvgdOptions): T {
  return tf.tidy(() => {
    const n = x.shape[0];
    const flat = tf.reshape(x, [n, -1]) as tf.Tensor2D;
    const phi = svgdDirection(flat, tf.reshape(gradLoss, [n, -1]) as tf.Tensor2D, opts.sigma);
    let rate: tf.Tensor = tf.scalar(opts.alpha);
    if (opts.step === "rms") {
      const rms = tf.sqrt(tf.mean(tf.square(phi)));
      // φ = 0 (no gradient, one particle): nothing moves rather than 0/0.
      rate = tf.where(tf.greater(rms, 0), tf.div(rate, tf.maximum(rms, 1e-30)), tf.zerosLike(rms));
    }
    let out: tf.Tensor = tf.add(flat, tf.mul(phi, rate));
    if (opts.clip) out = tf.clipByValue(out, opts.clip[0], opts.clip[1]);
    return tf.reshape(out, x.shape) as T;
  });
}
