import assert from "node:assert/strict";
import { mulberry32, type Rng } from "../../lib/data/rng.ts";
import {
  farthestVertex,
  gaussianNoiseRows,
  gradArgmaxRows,
  greedyMassMove,
  highConfRows,
  madArgmaxRows,
  madRows,
  randpArgmaxRows,
  randpRows,
  reverseSigmoidRows,
  roundRows,
  rowArgmax,
  top1Rows,
} from "../../lib/defenses/output_math.ts";

const K = 10, N = 400;

/** Random probability rows: a softmax of logits with a random temperature (peaked to flat). */
function randomRows(rng: Rng, n = N, k = K): Float32Array {
  const y = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const t = 0.1 + rng() * 8;
    let s = 0;
    for (let c = 0; c < k; c++) s += y[i * k + c] = Math.exp(t * (rng() * 2 - 1) * 3);
    for (let c = 0; c < k; c++) y[i * k + c] /= s;
  }
  return y;
}

function assertProbRows(y: Float32Array, k = K, tol = 1e-5) {
  for (let i = 0; i < y.length / k; i++) {
    let s = 0;
    for (let c = 0; c < k; c++) {
      const v = y[i * k + c];
      assert.ok(v >= -1e-7 && v <= 1 + 1e-6, `row ${i}: entry ${v} outside [0, 1]`);
      s += v;
    }
    assert.ok(Math.abs(s - 1) <= tol, `row ${i}: sums to ${s}`);
  }
}

function l1Rows(a: ArrayLike<number>, b: ArrayLike<number>, k = K): number[] {
  const d: number[] = [];
  for (let i = 0; i < a.length / k; i++) {
    let s = 0;
    for (let c = 0; c < k; c++) s += Math.abs(a[i * k + c] - b[i * k + c]);
    d.push(s);
  }
  return d;
}

function assertBudget(a: Float32Array, b: Float32Array, eps: number) {
  for (const [i, d] of l1Rows(a, b).entries()) assert.ok(d <= eps + 1e-5, `row ${i}: L1 ${d} > ε = ${eps}`);
}

function assertSameArgmax(a: Float32Array, b: Float32Array, k = K) {
  for (let i = 0; i < a.length / k; i++) assert.equal(rowArgmax(a, i, k), rowArgmax(b, i, k), `row ${i}`);
}

/**
 * By enumeration: the largest L1 distance from row `i` of `y` to a probability vector whose top-1 is
 * y's (the maximum of a convex function over that polytope, at one of its vertices: a uniform
 * distribution over a set of classes containing the top-1).
 */
function maxKeepingL1(y: Float32Array, i: number, k: number): number {
  const top = rowArgmax(y, i, k);
  const others = [...Array(k).keys()].filter((c) => c !== top);
  let best = 0;
  for (let mask = 0; mask < 1 << (k - 1); mask++) {
    const members = [top, ...others.filter((_, b) => (mask >> b) & 1)];
    const d = [...Array(k).keys()].reduce(
      (s, c) => s + Math.abs(y[i * k + c] - (members.includes(c) ? 1 / members.length : 0)),
      0,
    );
    best = Math.max(best, d);
  }
  return best;
}

/** Probability rows, top-1 kept, L1 ≤ ε, and L1 = min(ε, the largest top-1-keeping distance) within `tol`. */
function assertKeepsTop1AtBudget(out: Float32Array, y: Float32Array, k: number, eps: number, what: string, tol = 5e-3) {
  assertProbRows(out, k);
  assertSameArgmax(out, y, k);
  for (const [i, d] of l1Rows(out, y, k).entries()) {
    assert.ok(d <= eps + 1e-5, `${what} row ${i}: L1 ${d} > ε = ${eps}`);
    const reachable = Math.min(eps, maxKeepingL1(y, i, k));
    assert.ok(d >= reachable - tol, `${what} row ${i}: L1 ${d}, but ${reachable} is reachable with the same top-1`);
  }
}

Deno.test("randp: probability vectors, L1 ≤ ε, mass moves from the top-1 to another class", () => {
  const rng = mulberry32(1);
  for (const eps of [0.1, 0.5, 1, 2]) {
    const y = randomRows(rng);
    const out = randpRows(y, K, eps, rng);
    assertProbRows(out);
    assertBudget(out, y, eps);
    for (let i = 0; i < N; i++) {
      const top = rowArgmax(y, i, K);
      const moved = Math.min(eps / 2, y[i * K + top]);
      assert.ok(Math.abs(y[i * K + top] - out[i * K + top] - moved) < 1e-6, `row ${i}: top-1 lost the wrong mass`);
      const changed = [...Array(K).keys()].filter((c) => out[i * K + c] !== y[i * K + c]);
      assert.equal(changed.length, 2, `row ${i}: exactly two classes change`);
    }
  }
  // every non-top class is a target at some point (the class is random)
  const y = new Float32Array(K).fill(0.05);
  y[3] = 0.55;
  const hit = new Set<number>();
  for (let r = 0; r < 200; r++) {
    const out = randpRows(y, K, 0.2, rng);
    hit.add([...Array(K).keys()].find((c) => c !== 3 && out[c] > 0.05 + 1e-6)!);
  }
  assert.deepEqual([...hit].sort(), [0, 1, 2, 4, 5, 6, 7, 8, 9]);
});

Deno.test("mad: probability vectors within the L1 budget; the argmax-preserving variant keeps the argmax", () => {
  const rng = mulberry32(2);
  for (const eps of [0.1, 0.5, 1]) {
    const y = randomRows(rng), ps = randomRows(rng);
    const out = madRows(y, ps, K, eps, false);
    assertProbRows(out);
    assertBudget(out, y, eps);
    const kept = madRows(y, ps, K, eps, true);
    assertProbRows(kept);
    assertBudget(kept, y, eps);
    assertSameArgmax(kept, y);
  }
});

Deno.test("mad: picks the one-hot target of largest angular deviation, uses the whole budget", () => {
  const rng = mulberry32(3);
  const y = randomRows(rng, 50), ps = randomRows(rng, 50);
  const eps = 0.4;
  const out = madRows(y, ps, K, eps, false);
  for (let i = 0; i < 50; i++) {
    const o = i * K;
    const v = [...Array(K).keys()].map((c) => ps[o + c] - y[o + c]);
    const cos = (j: number) => {
      const u = [...Array(K).keys()].map((c) => ps[o + c] - (c === j ? 1 : 0));
      const dot = u.reduce((s, x, c) => s + x * v[c], 0);
      return dot / Math.hypot(...u) / Math.hypot(...v);
    };
    let best = 0;
    for (let j = 1; j < K; j++) if (cos(j) < cos(best)) best = j;
    // ỹ − y is a positive multiple of e_best − y
    const d = [...Array(K).keys()].map((c) => out[o + c] - y[o + c]);
    assert.ok(d[best] > 0, `row ${i}: mass should move toward class ${best}`);
    const l1 = d.reduce((s, x) => s + Math.abs(x), 0);
    assert.ok(Math.abs(l1 - Math.min(eps, 2 * (1 - y[o + best]))) < 1e-5, `row ${i}: L1 ${l1}`);
  }
});

Deno.test("greedy mass move: optimal for the linear objective within the L1 budget", () => {
  const rng = mulberry32(4);
  for (const eps of [0.2, 1, 2]) {
    const y = randomRows(rng), c = Float32Array.from({ length: N * K }, () => rng() * 2 - 1);
    const out = greedyMassMove(y, c, K, eps);
    assertProbRows(out);
    assertBudget(out, y, eps);
    const obj = (z: Float32Array, i: number) =>
      [...Array(K).keys()].reduce((s, j) => s + z[i * K + j] * c[i * K + j], 0);
    for (let i = 0; i < N; i++) {
      assert.ok(obj(out, i) <= obj(y, i) + 1e-6, `row ${i}: objective grew`);
      // no random feasible move does better
      for (let t = 0; t < 20; t++) {
        const a = Math.floor(rng() * K), b = Math.floor(rng() * K);
        const m = Math.min(eps / 2, y[i * K + a]) * rng();
        const z = Float32Array.from(y.subarray(i * K, i * K + K));
        z[a] -= m;
        z[b] += m;
        const zc = [...Array(K).keys()].reduce((s, j) => s + z[j] * c[i * K + j], 0);
        assert.ok(obj(out, i) <= zc + 1e-5, `row ${i}: a one-move point beats the greedy optimum`);
      }
    }
  }
});

Deno.test("postprocessors: probability vectors; cutoff, rounding and top-1 keep the argmax", () => {
  const rng = mulberry32(5);
  const y = randomRows(rng);
  const rs = reverseSigmoidRows(y, K, 0.7, 0.4);
  assertProbRows(rs);
  assert.ok(l1Rows(rs, y).some((d) => d > 1e-3), "reverse sigmoid changes outputs");
  const hc = highConfRows(y, K, 0.3);
  assertProbRows(hc);
  assertSameArgmax(hc, y);
  for (let i = 0; i < hc.length; i++) {
    assert.ok(hc[i] === 0 || y[i] >= 0.3 || rowArgmax(y, Math.floor(i / K), K) === i % K);
  }
  const r2 = roundRows(y, K, 2);
  assertProbRows(r2, K, K * 0.005 + 1e-6);
  for (const v of r2) assert.ok(Math.abs(v * 100 - Math.round(v * 100)) < 1e-3);
  const t1 = top1Rows(y, K);
  assertProbRows(t1);
  assertSameArgmax(t1, y);
  assert.ok(t1.every((v) => v === 0 || v === 1));
  const gn = gaussianNoiseRows(y, K, 0.05, rng);
  assertProbRows(gn);
  const mean = l1Rows(gn, y).reduce((s, d) => s + d, 0) / N;
  assert.ok(mean > 0.05 && mean < 0.6, `gaussian noise: mean L1 ${mean}`);
});

Deno.test("bad shapes are clear errors", () => {
  assert.throws(() => randpRows(new Float32Array(7), K, 1, mulberry32(0)), /7 values are not rows of k = 10/);
  assert.throws(() => madRows(new Float32Array(10), new Float32Array(20), K, 1, false), /surrogate gives 20/);
});

/** Rows of a confident victim (top-1 ≥ 0.9), as an MNIST LeNet-5 answers most test images. */
function peakedRows(rng: Rng, n: number, k = K): Float32Array {
  const y = randomRows(rng, n, k);
  for (let i = 0; i < n; i++) {
    const top = rowArgmax(y, i, k), p = 0.9 + 0.1 * rng();
    let rest = 0;
    for (let c = 0; c < k; c++) if (c !== top) rest += y[i * k + c];
    for (let c = 0; c < k; c++) y[i * k + c] = c === top ? p : (y[i * k + c] / (rest || 1)) * (1 - p);
  }
  return y;
}

Deno.test("randp (default, top-1 kept): probability rows, same top-1, L1 = ε wherever the top-1 allows", () => {
  const rng = mulberry32(11);
  for (const k of [3, 10]) {
    for (const eps of [0.1, 0.5, 1, 1.5]) {
      const y = randomRows(rng, 150, k);
      assertKeepsTop1AtBudget(randpArgmaxRows(y, k, eps, rng), y, k, eps, `k ${k} ε ${eps}`);
    }
  }
  // Confident rows: every answer moves by exactly ε = 1, and the direction is random.
  const y = peakedRows(rng, 200);
  const out = randpArgmaxRows(y, K, 1, rng);
  for (const d of l1Rows(out, y)) assert.ok(Math.abs(d - 1) < 1e-4, `L1 ${d}`);
  const one = y.subarray(0, K);
  const seen = new Set(Array.from({ length: 20 }, () => Array.from(randpArgmaxRows(one, K, 1, rng)).join(",")));
  assert.ok(seen.size > 10, `${seen.size} distinct answers in 20 draws`);
  // A one-hot row and a uniform row (ties: the first class is the top-1, and stays so).
  const edge = new Float32Array(2 * K);
  edge[4] = 1;
  edge.fill(1 / K, K);
  assertKeepsTop1AtBudget(randpArgmaxRows(edge, K, 1, rng), edge, K, 1, "edge");
});

Deno.test("the farthest top-1-keeping target is the largest L1 move with the same top-1", () => {
  const rng = mulberry32(12);
  for (const k of [2, 5, 9]) {
    const y = randomRows(rng, 100, k);
    for (let i = 0; i < 100; i++) {
      const { target, dist } = farthestVertex(y, i, k);
      assert.ok(Math.abs(dist - maxKeepingL1(y, i, k)) < 5e-3, `k ${k} row ${i}: ${dist}`);
      assert.equal(rowArgmax(target, 0, k), rowArgmax(y, i, k));
    }
  }
});

/** By enumeration: MAD's argmax-preserving oracle target for row `i` (all sets S ∋ top, scored by angular deviation). */
function madOracle(y: Float32Array, ps: Float32Array, i: number, k: number): number[] {
  const o = i * k, top = rowArgmax(y, i, k);
  const v = [...Array(k).keys()].map((c) => ps[o + c] - y[o + c]);
  const others = [...Array(k).keys()].filter((c) => c !== top);
  let best: number[] = [], bestCos = Infinity;
  for (let mask = 0; mask < 1 << (k - 1); mask++) {
    const members = [top, ...others.filter((_, b) => (mask >> b) & 1)];
    const w = members.length + 1e-3;
    const u = [...Array(k).keys()].map((c) => (c === top ? 1.001 / w : members.includes(c) ? 1 / w : 0));
    const g = u.map((uc, c) => ps[o + c] - uc);
    const cos = g.reduce((s, x, c) => s + x * v[c], 0) / Math.hypot(...g) / Math.hypot(...v);
    if (cos < bestCos) {
      bestCos = cos;
      best = u;
    }
  }
  return best;
}

Deno.test("mad (default, top-1 kept): the reference's argmax-preserving oracle and line search", () => {
  const rng = mulberry32(13);
  for (const k of [4, 10]) {
    for (const eps of [0.2, 1]) {
      const y = randomRows(rng, 60, k), ps = randomRows(rng, 60, k);
      const out = madArgmaxRows(y, ps, k, eps);
      assert.deepEqual(out, madRows(y, ps, k, eps, true));
      assertProbRows(out, k);
      assertSameArgmax(out, y, k);
      for (let i = 0; i < 60; i++) {
        const u = madOracle(y, ps, i, k);
        const d = u.reduce((s, uc, c) => s + Math.abs(uc - y[i * k + c]), 0);
        const a = Math.min(1, eps / d);
        for (let c = 0; c < k; c++) {
          const want = (1 - a) * y[i * k + c] + a * u[c];
          assert.ok(
            Math.abs(out[i * k + c] - want) < 1e-5,
            `k ${k} ε ${eps} row ${i} class ${c}: ${out[i * k + c]} vs ${want}`,
          );
        }
      }
    }
  }
  // Confident rows at ε = 1 (the paper's setting): the top-1 stays and almost every answer uses the whole budget.
  const y = peakedRows(rng, 300), ps = randomRows(rng, 300);
  const out = madArgmaxRows(y, ps, K, 1);
  assertSameArgmax(out, y);
  const l1 = l1Rows(out, y);
  assert.ok(l1.every((d) => d <= 1 + 1e-5));
  assert.ok(l1.reduce((s, d) => s + d, 0) / l1.length >= 0.95, `mean L1 ${l1.reduce((s, d) => s + d, 0) / l1.length}`);
  // Many classes: the greedy search keeps the same guarantees.
  const y100 = randomRows(rng, 20, 100), ps100 = randomRows(rng, 20, 100);
  const out100 = madArgmaxRows(y100, ps100, 100, 1);
  assertProbRows(out100, 100);
  assertSameArgmax(out100, y100, 100);
  for (const d of l1Rows(out100, y100, 100)) assert.ok(d <= 1 + 1e-5, `L1 ${d}`);
});

Deno.test("mad (argmax_preserving: false) flips most confident answers at ε = 1; the default keeps them", () => {
  const rng = mulberry32(14);
  const y = peakedRows(rng, 300), ps = randomRows(rng, 300);
  const flipping = madRows(y, ps, K, 1, false);
  const flipped = [...Array(300).keys()].filter((i) => rowArgmax(flipping, i, K) !== rowArgmax(y, i, K)).length;
  assert.ok(flipped > 150, `${flipped} of 300 flipped`);
  assertSameArgmax(madRows(y, ps, K, 1, true), y);
});

Deno.test("grad (default, top-1 kept): same top-1, L1 = ε wherever the top-1 allows, redirects better than chance", () => {
  const rng = mulberry32(15);
  for (const k of [3, 10]) {
    for (const eps of [0.1, 0.5, 1, 1.5]) {
      const y = randomRows(rng, 150, k), c = Float32Array.from({ length: 150 * k }, () => rng() * 2 - 1);
      assertKeepsTop1AtBudget(gradArgmaxRows(y, c, k, eps), y, k, eps, `k ${k} ε ${eps}`);
    }
  }
  // Against a random full-budget answer with the same top-1 (RandP), GRAD's objective ỹ · c is lower.
  const n = 400, y = peakedRows(rng, n), c = Float32Array.from({ length: n * K }, () => rng() * 2 - 1);
  const obj = (z: Float32Array, i: number) => [...Array(K).keys()].reduce((s, j) => s + z[i * K + j] * c[i * K + j], 0);
  const g = gradArgmaxRows(y, c, K, 1), r = randpArgmaxRows(y, K, 1, rng);
  assertSameArgmax(g, y);
  const better = [...Array(n).keys()].filter((i) => obj(g, i) <= obj(r, i) + 1e-6).length;
  assert.ok(better >= 0.95 * n, `${better} of ${n} rows at least as redirected as a random answer`);
  // Coefficients all equal (a surrogate without gradient): nothing to redirect, the answer is unchanged.
  assert.deepEqual(gradArgmaxRows(y, new Float32Array(n * K).fill(0.3), K, 1), Float32Array.from(y));
});

Deno.test("grad (argmax_preserving: false) flips confident answers at ε = 1; the default keeps them", () => {
  const rng = mulberry32(16);
  const y = peakedRows(rng, 300), c = Float32Array.from({ length: 300 * K }, () => rng() * 2 - 1);
  const flipping = greedyMassMove(y, c, K, 1);
  const flipped = [...Array(300).keys()].filter((i) => rowArgmax(flipping, i, K) !== rowArgmax(y, i, K)).length;
  assert.ok(flipped > 100, `${flipped} of 300 flipped`);
  assertSameArgmax(gradArgmaxRows(y, c, K, 1), y);
  const r = randpRows(y, K, 1, rng);
  assert.ok([...Array(300).keys()].some((i) => rowArgmax(r, i, K) !== rowArgmax(y, i, K)), "randp's flipping form");
});
