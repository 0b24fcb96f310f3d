/**
 * Confidence intervals over seeds: Student's t for one mean against a fixed
 * number (ours against the paper's) and Welch's t for the difference of two
 * means (one arm of ours against another). The t quantiles come from the
 * regularised incomplete beta function, so any (fractional) degrees of
 * freedom work.
 *
 * @example
 * ```ts
 * import { welchInterval } from "./stats.ts";
 * const ci = welchInterval({ mean: 50, std: 2, n: 3 }, { mean: 60, std: 3, n: 3 });
 * ci.diff; // -10
 * ```
 *
 * @module
 */

/** A sample summarised by its mean, sample standard deviation and size. */
export interface Sample {
  /** Mean. */
  mean: number;
  /** Sample standard deviation (n − 1 in the denominator). */
  std: number;
  /** Sample size (seeds). */
  n: number;
}

/** A difference with its two-sided confidence interval. */
export interface Interval {
  /** The point estimate of the difference. */
  diff: number;
  /** Lower end of the interval (equal to `diff` when there is no spread to use). */
  lo: number;
  /** Upper end. */
  hi: number;
  /** Degrees of freedom of the t distribution used (NaN when no interval could be formed). */
  df: number;
  /** False when a sample has n < 2, so that no interval exists and `lo = hi = diff`. */
  hasInterval: boolean;
  /** The method, as the output names it. */
  method: string;
}

function logGamma(x: number): number {
  // Lanczos approximation (g = 7, n = 9), accurate to ~1e-15 for x > 0.
  const c = [
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - (a + b) * x / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** The regularised incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2)
    ? front * betaContinuedFraction(a, b, x) / a
    : 1 - front * betaContinuedFraction(b, a, 1 - x) / b;
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/**
 * The `p` quantile of Student's t with `df` degrees of freedom (bisection on
 * the CDF), e.g. `studentTQuantile(0.975, 2)` ≈ 4.3027.
 */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1) || !(df > 0)) {
    throw new RangeError(`studentTQuantile: need 0 < p < 1 and df > 0 (p ${p}, df ${df})`);
  }
  if (p === 0.5) return 0;
  let lo = -1, hi = 1;
  while (studentTCdf(lo, df) > p) lo *= 2;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * Math.max(1, Math.abs(hi)); i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * The 95% (or `level`) interval of `s.mean − reference` by Student's t with
 * n − 1 degrees of freedom: the reference (a number printed in the paper) is
 * taken as fixed. With n < 2 there is no interval (`hasInterval` false).
 */
export function meanInterval(s: Sample, reference: number, level = 0.95): Interval {
  const diff = s.mean - reference;
  const method = `Student's t over seeds (n − 1 df), ${Math.round(level * 100)}%`;
  if (s.n < 2) return { diff, lo: diff, hi: diff, df: NaN, hasInterval: false, method };
  const df = s.n - 1;
  const half = studentTQuantile(1 - (1 - level) / 2, df) * s.std / Math.sqrt(s.n);
  return { diff, lo: diff - half, hi: diff + half, df, hasInterval: true, method };
}

/**
 * Welch's t interval of `a.mean − b.mean` (unequal variances,
 * Welch–Satterthwaite degrees of freedom). With n < 2 in either sample there
 * is no interval; when both samples have zero spread the interval is the
 * point itself.
 */
export function welchInterval(a: Sample, b: Sample, level = 0.95): Interval {
  const diff = a.mean - b.mean;
  const method = `Welch's t, ${Math.round(level * 100)}%`;
  if (a.n < 2 || b.n < 2) return { diff, lo: diff, hi: diff, df: NaN, hasInterval: false, method };
  const va = a.std ** 2 / a.n, vb = b.std ** 2 / b.n;
  const se = Math.sqrt(va + vb);
  if (se === 0) return { diff, lo: diff, hi: diff, df: a.n + b.n - 2, hasInterval: true, method };
  const df = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1));
  const half = studentTQuantile(1 - (1 - level) / 2, df) * se;
  return { diff, lo: diff - half, hi: diff + half, df, hasInterval: true, method };
}
