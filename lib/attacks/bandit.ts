/**
 * The adaptive sampling policy of Knockoff Nets (Orekondy et al., CVPR 2019):
 * a gradient bandit (Sutton & Barto, §2.8) over the surrogate set's classes,
 * and the rewards that drive it — certainty, diversity and loss — each
 * normalised by its running mean and standard deviation.
 *
 * @module
 */
import type { Rng } from "../data/rng.ts";

/** Serialisable state of a {@linkcode GradientBandit}. */
export interface BanditState {
  /** Preferences H(a), one per action. */
  preferences: number[];
  /** The reward baseline: mean of the rewards seen so far. */
  baseline: number;
  /** Updates done. */
  steps: number;
}

/**
 * A gradient bandit: the policy π(a) = softmax(H)(a); after action `a` earns
 * reward r, H(a) += lr·(r − r̄)·(1 − π(a)) and H(b) −= lr·(r − r̄)·π(b) for
 * every other b, where r̄ is the mean of the earlier rewards (the first reward
 * is its own baseline).
 *
 * @example
 * ```ts
 * import { GradientBandit } from "./bandit.ts";
 * import { mulberry32 } from "../data/rng.ts";
 * const bandit = new GradientBandit(3, 0.1);
 * const a = bandit.sample(mulberry32(0));
 * bandit.update(a, 1.0);
 * ```
 */
export class GradientBandit {
  /** Preferences H(a). */
  readonly preferences: Float64Array;
  /** Mean of the rewards seen so far. */
  baseline = 0;
  /** Updates done. */
  steps = 0;

  /**
   * A bandit with all preferences 0 (the uniform policy).
   *
   * @param actions number of actions (≥ 1)
   * @param lr preference step size
   */
  constructor(readonly actions: number, readonly lr: number) {
    if (!Number.isInteger(actions) || actions < 1) throw new RangeError(`bandit: actions must be ≥ 1, got ${actions}`);
    if (!(lr > 0)) throw new RangeError(`bandit: lr must be positive, got ${lr}`);
    this.preferences = new Float64Array(actions);
  }

  /** The policy π = softmax(H). */
  probabilities(): Float64Array {
    const h = this.preferences;
    let max = -Infinity;
    for (const v of h) max = Math.max(max, v);
    const p = new Float64Array(h.length);
    let sum = 0;
    for (let a = 0; a < h.length; a++) sum += p[a] = Math.exp(h[a] - max);
    for (let a = 0; a < h.length; a++) p[a] /= sum;
    return p;
  }

  /** Draws an action from π with `rng`. */
  sample(rng: Rng): number {
    const p = this.probabilities();
    let u = rng();
    for (let a = 0; a < p.length; a++) {
      u -= p[a];
      if (u < 0) return a;
    }
    return p.length - 1;
  }

  /** Credits `reward` to `action` (see the class documentation). */
  update(action: number, reward: number): void {
    if (!Number.isInteger(action) || action < 0 || action >= this.actions) {
      throw new RangeError(`bandit: action ${action} outside [0, ${this.actions})`);
    }
    if (!Number.isFinite(reward)) throw new RangeError(`bandit: reward must be finite, got ${reward}`);
    const baseline = this.steps === 0 ? reward : this.baseline;
    const p = this.probabilities();
    const adv = this.lr * (reward - baseline);
    for (let a = 0; a < this.actions; a++) this.preferences[a] += adv * ((a === action ? 1 : 0) - p[a]);
    this.steps++;
    this.baseline += (reward - this.baseline) / this.steps;
  }

  /** The state, for checkpoints. */
  state(): BanditState {
    return { preferences: [...this.preferences], baseline: this.baseline, steps: this.steps };
  }

  /** Restores a state from {@linkcode GradientBandit.state}. */
  restore(s: BanditState): void {
    if (s.preferences.length !== this.actions) {
      throw new RangeError(`bandit: state has ${s.preferences.length} actions, this bandit ${this.actions}`);
    }
    this.preferences.set(s.preferences);
    this.baseline = s.baseline;
    this.steps = s.steps;
  }
}

/** Running mean and variance (Welford). */
export interface RunningStats {
  /** Values seen. */
  n: number;
  /** Their mean. */
  mean: number;
  /** Sum of squared deviations from the mean. */
  m2: number;
}

/** Adds `v` to `s` and returns v's z-score under the updated statistics (0 while the deviation is 0). */
export function normalise(s: RunningStats, v: number): number {
  s.n++;
  const d = v - s.mean;
  s.mean += d / s.n;
  s.m2 += d * (v - s.mean);
  const sd = s.n > 1 ? Math.sqrt(s.m2 / (s.n - 1)) : 0;
  return sd > 1e-12 ? (v - s.mean) / sd : 0;
}

/** Which reward drives the bandit: one of the paper's three, or their mean (`all`). */
export type RewardKind = "cert" | "div" | "loss" | "all";

/** Serialisable state of {@linkcode KnockoffRewards}. */
export interface RewardsState {
  /** Running statistics of the certainty, diversity and loss rewards. */
  stats: [RunningStats, RunningStats, RunningStats];
  /** Answers remembered for the diversity reward (flattened, oldest first). */
  history: number[];
  /** Answers summed into `history` (all of them when there is no window). */
  count: number;
}

/**
 * Certainty: the margin between the two largest probabilities of the answer.
 *
 * @example
 * ```ts
 * import { certaintyReward } from "./bandit.ts";
 * certaintyReward([0.7, 0.2, 0.1]); // 0.5
 * ```
 */
export function certaintyReward(y: ArrayLike<number>): number {
  let first = -Infinity, second = -Infinity;
  for (let k = 0; k < y.length; k++) {
    const v = y[k];
    if (v > first) [first, second] = [v, first];
    else if (v > second) second = v;
  }
  return second === -Infinity ? first : first - second;
}

/** Loss: the cross-entropy −Σ_k y_k log ŷ_k of the clone's probabilities ŷ against the answer y. */
export function lossReward(y: ArrayLike<number>, yHat: ArrayLike<number>): number {
  let s = 0;
  for (let k = 0; k < y.length; k++) s -= y[k] * Math.log(Math.max(yHat[k], 1e-12));
  return s;
}

/**
 * The rewards of the adaptive strategy. Diversity is Σ_k max(0, y_k − ȳ_k),
 * ȳ the mean of the previous `window` answers (all previous answers when no
 * window is given; 0 before the first). Each raw reward is normalised by its
 * own running mean and standard deviation; `all` is the mean of the three.
 */
export class KnockoffRewards {
  readonly #kind: RewardKind;
  readonly #k: number;
  readonly #window?: number;
  #stats: [RunningStats, RunningStats, RunningStats] = [0, 1, 2].map(() => ({ n: 0, mean: 0, m2: 0 })) as [
    RunningStats,
    RunningStats,
    RunningStats,
  ];
  /** With a window: the last answers (ring, oldest first after unrolling); without: the running sum. */
  #history: number[] = [];
  #count = 0;

  /**
   * Rewards of one kind, before any answer is seen.
   *
   * @param kind the reward
   * @param classes answer length
   * @param window answers the diversity reward looks back on
   */
  constructor(kind: RewardKind, classes: number, window?: number) {
    this.#kind = kind;
    this.#k = classes;
    this.#window = window;
    if (window === undefined) this.#history = new Array(classes).fill(0);
  }

  #diversity(y: ArrayLike<number>): number {
    const k = this.#k;
    const n = this.#window === undefined ? this.#count : this.#history.length / k;
    let r = 0;
    for (let j = 0; j < k; j++) {
      let mean = 0;
      if (this.#window === undefined) mean = n > 0 ? this.#history[j] / n : 0;
      else {
        for (let i = 0; i < n; i++) mean += this.#history[i * k + j];
        mean = n > 0 ? mean / n : 0;
      }
      r += Math.max(0, y[j] - mean);
    }
    // Remember this answer.
    if (this.#window === undefined) {
      for (let j = 0; j < k; j++) this.#history[j] += y[j];
    } else {
      for (let j = 0; j < k; j++) this.#history.push(y[j]);
      if (this.#history.length > this.#window * k) this.#history.splice(0, k);
    }
    this.#count++;
    return r;
  }

  /** The (normalised) reward of answer `y` given the clone's probabilities `yHat` on the same image. */
  reward(y: ArrayLike<number>, yHat: ArrayLike<number>): number {
    const raw = [certaintyReward(y), this.#diversity(y), lossReward(y, yHat)];
    const z = raw.map((v, i) => normalise(this.#stats[i], v));
    switch (this.#kind) {
      case "cert":
        return z[0];
      case "div":
        return z[1];
      case "loss":
        return z[2];
      case "all":
        return (z[0] + z[1] + z[2]) / 3;
    }
  }

  /** The state, for checkpoints. */
  state(): RewardsState {
    return { stats: structuredClone(this.#stats), history: [...this.#history], count: this.#count };
  }

  /** Restores a state from {@linkcode KnockoffRewards.state}. */
  restore(s: RewardsState): void {
    this.#stats = structuredClone(s.stats);
    this.#history = [...s.history];
    this.#count = s.count;
  }
}
