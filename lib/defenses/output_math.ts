/**
 * The output-space arithmetic of the output-perturbing defenses, on plain
 * row-major arrays of probability vectors ([n, k] as a flat `Float32Array`).
 * Kept free of tensors so that every rule can be property-tested directly.
 *
 * Every function returns a new array and leaves its inputs untouched.
 *
 * @module
 */
import type { Rng } from "../data/rng.ts";

/** Index of the largest entry of row `i` (first on ties, as `tf.argMax`). */
export function rowArgmax(y: ArrayLike<number>, i: number, k: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (y[i * k + j] > y[i * k + best]) best = j;
  return best;
}

function checkShape(y: ArrayLike<number>, k: number, what: string): number {
  if (!Number.isInteger(k) || k < 2) throw new RangeError(`${what}: k must be an integer ≥ 2, got ${k}`);
  if (y.length % k !== 0) throw new RangeError(`${what}: ${y.length} values are not rows of k = ${k}`);
  return y.length / k;
}

/**
 * RandP: per row, a class other than the top-1 is drawn uniformly at random and
 * `eps / 2` of probability mass (at most all of the top-1's) is moved from the
 * top-1 class to it, so ‖y′ − y‖₁ ≤ ε and y′ stays a probability vector.
 */
export function randpRows(y: ArrayLike<number>, k: number, eps: number, rng: Rng): Float32Array {
  const n = checkShape(y, k, "randp");
  const out = Float32Array.from(y);
  for (let i = 0; i < n; i++) {
    const top = rowArgmax(y, i, k);
    let to = Math.floor(rng() * (k - 1));
    if (to >= top) to++;
    const m = Math.min(eps / 2, out[i * k + top]);
    out[i * k + top] -= m;
    out[i * k + to] += m;
  }
  return out;
}

/**
 * Prediction Poisoning / MAD (Orekondy et al., ICLR 2020) with gradients taken
 * w.r.t. the surrogate's last linear layer, as in the reference. For that layer
 * the NLL gradient of a target y is Gᵀy = [a; 1] ⊗ (p − y) (a: the layer's
 * input, p: the surrogate's softmax), so the angle between Gᵀy* and Gᵀy is the
 * angle between p − y* and p − y: the feature norm cancels and only `ps`, the
 * surrogate's probabilities, is needed.
 *
 * Per row: the one-hot y* = e_j maximising the angular deviation
 * ‖Gᵀy* ÷ ‖Gᵀy*‖ − Gᵀy/‖Gᵀy‖‖ is chosen, then ỹ = (1 − α) y + α y* with the
 * largest α ≤ 1 within the L1 budget (‖ỹ − y‖₁ = α‖y* − y‖₁ ≤ ε).
 *
 * With `argmaxPreserving`, α is further capped so that the top-1 class of y
 * stays the top-1 of ỹ, and y* is chosen by the deviation reached at that
 * capped α (the best feasible point along each one-hot direction).
 */
export function madRows(
  y: ArrayLike<number>,
  ps: ArrayLike<number>,
  k: number,
  eps: number,
  argmaxPreserving: boolean,
): Float32Array {
  const n = checkShape(y, k, "mad");
  if (ps.length !== y.length) throw new RangeError(`mad: surrogate gives ${ps.length} values, victim ${y.length}`);
  const out = new Float32Array(y.length);
  const v = new Float64Array(k), u = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let vv = 0;
    for (let c = 0; c < k; c++) {
      v[c] = ps[o + c] - y[o + c];
      vv += v[c] * v[c];
    }
    const vn = Math.sqrt(vv) || 1;
    const top = rowArgmax(y, i, k);
    let bestJ = top, bestCos = Infinity, bestA = 0;
    for (let j = 0; j < k; j++) {
      const dist = 2 * (1 - y[o + j]); // ‖e_j − y‖₁
      let a = dist > 0 ? Math.min(1, eps / dist) : 0;
      if (argmaxPreserving && j !== top) {
        const gap = y[o + top] - y[o + j];
        // (1 − a) y_top > (1 − a) y_j + a  ⇔  a < gap / (1 + gap); keep a hair inside.
        a = Math.min(a, Math.max(0, (gap / (1 + gap)) * (1 - 1e-4)));
      }
      // The deviation is scored at y* itself (paper) or at the capped feasible point (argmax-preserving).
      const s = argmaxPreserving ? a : 1;
      let dot = 0, uu = 0;
      for (let c = 0; c < k; c++) {
        const yt = (1 - s) * y[o + c] + (c === j ? s : 0);
        u[c] = ps[o + c] - yt;
        dot += u[c] * v[c];
        uu += u[c] * u[c];
      }
      const cos = dot / ((Math.sqrt(uu) || 1) * vn);
      if (cos < bestCos) {
        bestCos = cos;
        bestJ = j;
        bestA = a;
      }
    }
    for (let c = 0; c < k; c++) out[o + c] = (1 - bestA) * y[o + c] + (c === bestJ ? bestA : 0);
  }
  return out;
}

/**
 * GRAD's greedy mass move (Mazeika et al., 2022): minimise the linear objective
 * ỹ · c over the probability simplex within ‖ỹ − y‖₁ ≤ ε. Mass m = min(ε/2,
 * 1 − y_j) goes to the class j with the smallest coefficient, taken from the
 * other classes in decreasing order of their coefficients (each down to 0): the
 * exact optimum of this linear program.
 */
export function greedyMassMove(y: ArrayLike<number>, c: ArrayLike<number>, k: number, eps: number): Float32Array {
  const n = checkShape(y, k, "grad");
  if (c.length !== y.length) throw new RangeError(`grad: ${c.length} coefficients for ${y.length} probabilities`);
  const out = Float32Array.from(y);
  const order = Array.from({ length: k }, (_, j) => j);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    order.sort((p, q) => c[o + q] - c[o + p] || p - q); // descending coefficient
    const to = order[k - 1];
    let left = Math.min(eps / 2, 1 - y[o + to]);
    let moved = 0;
    for (let r = 0; r < k - 1 && left > 0; r++) {
      const j = order[r];
      if (!(c[o + j] > c[o + to])) break;
      const take = Math.min(left, out[o + j]);
      out[o + j] -= take;
      left -= take;
      moved += take;
    }
    out[o + to] += moved;
  }
  return out;
}

/** Reverse sigmoid (Lee et al. 2019, as in IBM ART): ỹ ∝ clip(y − β(σ(γ·logit y) − ½), 0, 1). */
export function reverseSigmoidRows(y: ArrayLike<number>, k: number, beta: number, gamma: number): Float32Array {
  const n = checkShape(y, k, "reverse_sigmoid");
  const out = new Float32Array(y.length);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let sum = 0;
    for (let c = 0; c < k; c++) {
      const p = Math.min(Math.max(y[o + c], 1e-9), 1 - 1e-9);
      const r = beta * (1 / (1 + Math.exp(-gamma * Math.log(p / (1 - p)))) - 0.5);
      out[o + c] = Math.min(Math.max(y[o + c] - r, 0), 1);
      sum += out[o + c];
    }
    if (sum > 0) { for (let c = 0; c < k; c++) out[o + c] /= sum; }
    else for (let c = 0; c < k; c++) out[o + c] = 1 / k;
  }
  return out;
}

/**
 * High-confidence cutoff (IBM ART's HighConfidence): probabilities below
 * `threshold` are zeroed. Unlike ART the top-1 entry is always kept and the row
 * renormalised, so the answer stays a probability vector with the same argmax.
 */
export function highConfRows(y: ArrayLike<number>, k: number, threshold: number): Float32Array {
  const n = checkShape(y, k, "high_conf_cutoff");
  const out = Float32Array.from(y);
  for (let i = 0; i < n; i++) {
    const o = i * k, top = rowArgmax(y, i, k);
    let sum = 0;
    for (let c = 0; c < k; c++) {
      if (c !== top && out[o + c] < threshold) out[o + c] = 0;
      sum += out[o + c];
    }
    for (let c = 0; c < k; c++) out[o + c] = sum > 0 ? out[o + c] / sum : c === top ? 1 : 0;
  }
  return out;
}

/** Rounding (IBM ART's Rounded): each probability rounded to `decimals` places (rows then sum to 1 ± k·½·10⁻ᵈ). */
export function roundRows(y: ArrayLike<number>, k: number, decimals: number): Float32Array {
  checkShape(y, k, "rounding");
  const f = 10 ** decimals;
  return Float32Array.from(y, (p) => Math.round(p * f) / f);
}

/** Top-1 label only (IBM ART's ClassLabels): the one-hot vector of the argmax. */
export function top1Rows(y: ArrayLike<number>, k: number): Float32Array {
  const n = checkShape(y, k, "top1");
  const out = new Float32Array(y.length);
  for (let i = 0; i < n; i++) out[i * k + rowArgmax(y, i, k)] = 1;
  return out;
}

/** A standard normal draw from `rng` (Box–Muller). */
export function normal(rng: Rng): number {
  const u = 1 - rng(), v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/**
 * Gaussian noise (IBM ART's GaussianNoise): ỹ ∝ max(y + N(0, std²), 0),
 * renormalised; a row whose noisy entries are all ≤ 0 is returned unchanged.
 */
export function gaussianNoiseRows(y: ArrayLike<number>, k: number, std: number, rng: Rng): Float32Array {
  const n = checkShape(y, k, "gaussian_noise");
  const out = new Float32Array(y.length);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let sum = 0;
    for (let c = 0; c < k; c++) {
      out[o + c] = Math.max(y[o + c] + std * normal(rng), 0);
      sum += out[o + c];
    }
    for (let c = 0; c < k; c++) out[o + c] = sum > 0 ? out[o + c] / sum : y[o + c];
  }
  return out;
}
