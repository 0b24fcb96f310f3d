import assert from "node:assert/strict";
import { mulberry32, type Rng } from "../../lib/data/rng.ts";
import {
  gaussianNoiseRows,
  greedyMassMove,
  highConfRows,
  madRows,
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

function l1Rows(a: Float32Array, b: Float32Array, k = K): number[] {
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

function assertSameArgmax(a: Float32Array, b: Float32Array) {
  for (let i = 0; i < a.length / K; i++) assert.equal(rowArgmax(a, i, K), rowArgmax(b, i, K), `row ${i}`);
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
