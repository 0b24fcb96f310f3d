/**
 * The output-space arithmetic of the output-perturbing defenses, on plain
 * row-major arrays of probability vectors ([n, k] as a flat `Float32Array`).
 * Kept free of tensors so that every rule can be property-tested directly.
 *
 * Every function returns a new array and leaves its inputs untouched.
 *
 * @module
 */
import { normal, type Rng } from "../data/rng.ts";

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
 * RandP, argmax-flipping form: per row, a class other than the top-1 is drawn
 * uniformly at random and `eps / 2` of probability mass (at most all of the
 * top-1's) is moved from the top-1 class to it, so ‖y′ − y‖₁ ≤ ε and y′ stays
 * a probability vector; at ε = 1 a confident top-1 loses its place. The form
 * that keeps the top-1 is {@linkcode randpArgmaxRows}.
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
 * This is the argmax-flipping form (the reference's "extreme" oracle): at a
 * budget of 1 it usually changes the top-1. With `argmaxPreserving` the
 * reference's argmax-preserving oracle is used instead ({@linkcode madArgmaxRows}).
 */
export function madRows(
  y: ArrayLike<number>,
  ps: ArrayLike<number>,
  k: number,
  eps: number,
  argmaxPreserving: boolean,
): Float32Array {
  if (argmaxPreserving) return madArgmaxRows(y, ps, k, eps);
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
    let bestJ = 0, bestCos = Infinity, bestA = 0;
    for (let j = 0; j < k; j++) {
      const dist = 2 * (1 - y[o + j]); // ‖e_j − y‖₁
      const a = dist > 0 ? Math.min(1, eps / dist) : 0;
      // The deviation is scored at y* = e_j itself.
      let dot = 0, uu = 0;
      for (let c = 0; c < k; c++) {
        u[c] = ps[o + c] - (c === j ? 1 : 0);
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
 * GRAD's greedy mass move (Mazeika et al., 2022), argmax-flipping form (the
 * form that keeps the top-1 is {@linkcode gradArgmaxRows}): minimise the linear objective
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

/**
 * Extra weight of the top-1 class in an argmax-preserving target: the target
 * is uniform over a set S of classes that contains the top-1, with the top-1
 * weighted 1 + TOP_WEIGHT, so the top-1 is strictly first in the target and
 * hence in every mixture of the answer with it.
 */
export const TOP_WEIGHT = 1e-3;

/**
 * Writes into `out` the target u_S uniform over the classes with `inS[c]`
 * (which must include `top`), the top-1 upweighted by {@linkcode TOP_WEIGHT}.
 * The targets u_S over all S ∋ top are the vertices of the polytope of
 * probability vectors whose top-1 is `top`.
 */
export function vertexTarget(inS: ArrayLike<number>, top: number, out: Float64Array): Float64Array {
  let s = 0;
  for (let c = 0; c < out.length; c++) s += inS[c] ? 1 : 0;
  const z = s + TOP_WEIGHT;
  for (let c = 0; c < out.length; c++) out[c] = inS[c] ? (c === top ? 1 + TOP_WEIGHT : 1) / z : 0;
  return out;
}

function l1To(y: ArrayLike<number>, o: number, u: Float64Array): number {
  let d = 0;
  for (let c = 0; c < u.length; c++) d += Math.abs(y[o + c] - u[c]);
  return d;
}

/**
 * The argmax-preserving target farthest in L1 from row `i` of `y`: the
 * vertex u_S (S ∋ top) maximising ‖y − u_S‖₁. For |S| = s the best S adds
 * the s − 1 classes of smallest probability (adding class c changes its term
 * from y_c to |1/s − y_c|), so k candidates suffice. Since the L1 distance is
 * convex, its maximum over the argmax-preserving polytope is at a vertex:
 * this is the largest L1 move that keeps the top-1.
 */
export function farthestVertex(y: ArrayLike<number>, i: number, k: number): { target: Float64Array; dist: number } {
  const o = i * k, top = rowArgmax(y, i, k);
  const others = Array.from({ length: k }, (_, c) => c).filter((c) => c !== top)
    .sort((a, b) => y[o + a] - y[o + b] || a - b);
  const inS = new Uint8Array(k);
  inS[top] = 1;
  const u = new Float64Array(k);
  let best = new Float64Array(k), bestD = -1;
  for (let s = 1; s <= k; s++) {
    if (s > 1) inS[others[s - 2]] = 1;
    const d = l1To(y, o, vertexTarget(inS, top, u));
    if (d > bestD) {
      bestD = d;
      best = Float64Array.from(u);
    }
  }
  return { target: best, dist: bestD };
}

/**
 * Row `i` of `out` := (1 − α) y + α u with α = min(1, ε / ‖y − u‖₁), the
 * largest step toward the target `u` within the L1 budget (the reference
 * MAD's line search). When the target's top-1 is y's, so is the answer's;
 * should float32 rounding tie the top-1 with another class, the row is
 * answered unperturbed.
 */
export function stepToward(
  y: ArrayLike<number>,
  i: number,
  k: number,
  u: Float64Array,
  eps: number,
  out: Float32Array,
): void {
  const o = i * k, d = l1To(y, o, u);
  const a = d > 0 ? Math.min(1, eps / d) : 0;
  for (let c = 0; c < k; c++) out[o + c] = (1 - a) * y[o + c] + a * u[c];
  const top = rowArgmax(y, i, k);
  for (let c = 0; c < k; c++) {
    if (c !== top && !(out[o + top] > out[o + c])) {
      for (let j = 0; j < k; j++) out[o + j] = y[o + j];
      return;
    }
  }
}

/**
 * RandP keeping the top-1 (the default): per row a random argmax-preserving
 * target u_S, S = the top-1 and each other class with probability ½ (at least
 * one), and the largest step toward it within ‖ỹ − y‖₁ ≤ ε. A target closer
 * than ε is replaced by the farthest one ({@linkcode farthestVertex}), so the
 * L1 distance is ε wherever a top-1-preserving answer that far exists, and
 * the largest such distance otherwise.
 */
export function randpArgmaxRows(y: ArrayLike<number>, k: number, eps: number, rng: Rng): Float32Array {
  const n = checkShape(y, k, "randp");
  const out = new Float32Array(y.length);
  const inS = new Uint8Array(k), u = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const o = i * k, top = rowArgmax(y, i, k);
    let added = 0;
    for (let c = 0; c < k; c++) {
      inS[c] = c === top || rng() < 0.5 ? 1 : 0;
      if (c !== top) added += inS[c];
    }
    if (added === 0) {
      let c = Math.floor(rng() * (k - 1));
      if (c >= top) c++;
      inS[c] = 1;
    }
    vertexTarget(inS, top, u);
    const target = l1To(y, o, u) >= eps ? u : farthestVertex(y, i, k).target;
    stepToward(y, i, k, target, eps, out);
  }
  return out;
}

/** Cosine between p − u and v (v = p − y of norm `vn`): the angular deviation score of MAD (lower deviates more). */
function madCos(ps: ArrayLike<number>, o: number, u: Float64Array, v: Float64Array, vn: number): number {
  let dot = 0, uu = 0;
  for (let c = 0; c < u.length; c++) {
    const w = ps[o + c] - u[c];
    dot += w * v[c];
    uu += w * w;
  }
  return dot / ((Math.sqrt(uu) || 1) * vn);
}

/** Largest number of classes for which {@linkcode madArgmaxRows} searches every target exhaustively. */
export const MAD_EXHAUSTIVE_MAX_K = 12;

/**
 * Argmax-preserving Prediction Poisoning, as Orekondy et al.'s reference
 * ("argmax" oracle + line search): the target y* is the argmax-preserving
 * vertex u_S (uniform over a set S ∋ top-1, top-1 upweighted) of largest
 * angular deviation of the surrogate's last-layer gradient (scored at y*, as
 * the one-hot oracle); then ỹ = (1 − α) y + α y*, α = min(1, ε / ‖y* − y‖₁).
 * Every S is tried for k ≤ {@linkcode MAD_EXHAUSTIVE_MAX_K}; for more classes
 * S grows greedily from {top-1}, one class per round (the one whose addition
 * deviates most), until 1024 targets have been scored or S holds every class.
 */
export function madArgmaxRows(y: ArrayLike<number>, ps: ArrayLike<number>, k: number, eps: number): Float32Array {
  const n = checkShape(y, k, "mad");
  if (ps.length !== y.length) throw new RangeError(`mad: surrogate gives ${ps.length} values, victim ${y.length}`);
  const out = new Float32Array(y.length);
  const v = new Float64Array(k), u = new Float64Array(k), inS = new Uint8Array(k);
  let sumV = new Float64Array(0), sumP = new Float64Array(0), size = new Uint8Array(0);
  for (let i = 0; i < n; i++) {
    const o = i * k, top = rowArgmax(y, i, k);
    let vv = 0;
    for (let c = 0; c < k; c++) {
      v[c] = ps[o + c] - y[o + c];
      vv += v[c] * v[c];
    }
    const vn = Math.sqrt(vv) || 1;
    let best = new Float64Array(k), bestCos = Infinity;
    const score = () => {
      const cos = madCos(ps, o, vertexTarget(inS, top, u), v, vn);
      if (cos < bestCos) {
        bestCos = cos;
        best = Float64Array.from(u);
      }
      return cos;
    };
    const others = Array.from({ length: k }, (_, c) => c).filter((c) => c !== top);
    inS.fill(0);
    inS[top] = 1;
    if (k <= MAD_EXHAUSTIVE_MAX_K) {
      // Every S = {top} ∪ mask, scored from its sums Σ_S v, Σ_S p (built from the mask without its lowest bit):
      // with w = 1 / (|S| + δ), (p − u)·v = p·v − w (Σ_S v + δ v_top) and
      // ‖p − u‖² = ‖p‖² − 2w (Σ_S p + δ p_top) + w² (|S| − 1 + (1 + δ)²).
      const m = 1 << (k - 1);
      if (sumV.length < m) {
        sumV = new Float64Array(m);
        sumP = new Float64Array(m);
        size = new Uint8Array(m);
      }
      let pv = 0, pp = 0;
      for (let c = 0; c < k; c++) {
        pv += ps[o + c] * v[c];
        pp += ps[o + c] * ps[o + c];
      }
      sumV[0] = v[top];
      sumP[0] = ps[o + top];
      size[0] = 1;
      let bestMask = 0;
      for (let mask = 0; mask < m; mask++) {
        if (mask > 0) {
          const low = 31 - Math.clz32(mask & -mask), rest = mask & (mask - 1), c = others[low];
          sumV[mask] = sumV[rest] + v[c];
          sumP[mask] = sumP[rest] + ps[o + c];
          size[mask] = size[rest] + 1;
        }
        const w = 1 / (size[mask] + TOP_WEIGHT);
        const dot = pv - w * (sumV[mask] + TOP_WEIGHT * v[top]);
        const uu = pp - 2 * w * (sumP[mask] + TOP_WEIGHT * ps[o + top]) +
          w * w * (size[mask] - 1 + (1 + TOP_WEIGHT) ** 2);
        const cos = dot / ((Math.sqrt(Math.max(uu, 0)) || 1) * vn);
        if (cos < bestCos) {
          bestCos = cos;
          bestMask = mask;
        }
      }
      for (let b = 0; b < k - 1; b++) inS[others[b]] = (bestMask >> b) & 1;
      best = Float64Array.from(vertexTarget(inS, top, u));
    } else {
      score();
      let scored = 1;
      const left = new Set(others);
      while (scored < 1024 && left.size > 0) {
        let pick = -1, pickCos = Infinity;
        for (const c of left) {
          inS[c] = 1;
          const cos = score();
          inS[c] = 0;
          scored++;
          if (cos < pickCos) {
            pickCos = cos;
            pick = c;
          }
        }
        inS[pick] = 1;
        left.delete(pick);
      }
    }
    stepToward(y, i, k, best, eps, out);
  }
  return out;
}

/**
 * GRAD keeping the top-1 (the default): the answer ỹ = (1 − α) y + α u_S
 * moves toward an argmax-preserving vertex u_S as far as the budget allows
 * (α = min(1, ε / ‖y − u_S‖₁)), choosing S to minimise the redirection
 * objective ỹ · c among the candidates that use the whole budget (the paper's
 * baselines answer at L1 = ε); when no candidate reaches ε, the farthest one.
 * Candidates, for each size s of S: the top-1 with the s − 1 other classes of
 * smallest coefficient (the best vertex of that size for the objective) and
 * with the s − 1 of smallest probability (the farthest vertex of that size),
 * so the budget is used in full wherever a top-1-preserving answer that far
 * exists. A row whose coefficients are all equal (a surrogate without
 * gradient there, e.g. a copy of the victim) is answered unperturbed.
 */
export function gradArgmaxRows(y: ArrayLike<number>, c: ArrayLike<number>, k: number, eps: number): Float32Array {
  const n = checkShape(y, k, "grad");
  if (c.length !== y.length) throw new RangeError(`grad: ${c.length} coefficients for ${y.length} probabilities`);
  const out = new Float32Array(y.length);
  const inS = new Uint8Array(k), u = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const o = i * k, top = rowArgmax(y, i, k);
    let cy = 0, cMin = Infinity, cMax = -Infinity;
    for (let j = 0; j < k; j++) {
      cy += c[o + j] * y[o + j];
      cMin = Math.min(cMin, c[o + j]);
      cMax = Math.max(cMax, c[o + j]);
    }
    if (!(cMax - cMin > 1e-9 * Math.max(1, Math.abs(cMax)))) {
      for (let j = 0; j < k; j++) out[o + j] = y[o + j]; // no gradient to redirect: the answer is left as it is
      continue;
    }
    const others = Array.from({ length: k }, (_, j) => j).filter((j) => j !== top);
    const orders = [
      [...others].sort((a, b) => c[o + a] - c[o + b] || a - b),
      [...others].sort((a, b) => y[o + a] - y[o + b] || a - b),
    ];
    let best: Float64Array | null = null, bestObj = Infinity;
    let far = new Float64Array(k), farD = -1;
    for (const order of orders) {
      inS.fill(0);
      inS[top] = 1;
      for (let s = 1; s <= k; s++) {
        if (s > 1) inS[order[s - 2]] = 1;
        const d = l1To(y, o, vertexTarget(inS, top, u));
        if (d > farD) {
          farD = d;
          far = Float64Array.from(u);
        }
        if (d < eps) continue;
        let cu = 0;
        for (let j = 0; j < k; j++) cu += c[o + j] * u[j];
        const obj = cy + (eps / d) * (cu - cy);
        if (obj < bestObj) {
          bestObj = obj;
          best = Float64Array.from(u);
        }
      }
    }
    stepToward(y, i, k, best ?? far, eps, out);
  }
  return out;
}
