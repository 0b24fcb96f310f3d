/**
 * The {@linkcode BlackBox}: the only door an attack has to a victim. It holds
 * the victim's {@linkcode Defense} (lib/defenses: a defense, or the
 * undefended model via `undefended(model)`) out of reach, answers image
 * queries with probabilities or top-1 labels, counts every image queried, and
 * refuses queries beyond its budget.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { LabelKind } from "../config/fields.ts";
import type { Defense } from "../defenses/defense.ts";
import { detach } from "./detach.ts";
import { BudgetExceededError, DefenseOutputError, QueryShapeError } from "./errors.ts";

/** What a black box answers: `soft` probabilities [n, k] or `hard` top-1 labels [n]. */
export type LabelMode = LabelKind;

/** The answer type of {@linkcode BlackBox.query} for label mode `M`. */
export type Answer<M extends LabelMode> = M extends "hard" ? tf.Tensor1D : tf.Tensor2D;

/** Options for {@linkcode BlackBox}. */
export interface BlackBoxOptions<M extends LabelMode> {
  /** Shape [h, w, c] of one image; queries must be [n, h, w, c]. */
  imageShape: readonly [number, number, number];
  /** Number of classes k the victim answers with. */
  numClasses: number;
  /** Maximum number of images that may ever be queried, `spent` included. */
  budget: number;
  /** `soft` (default) or `hard`. */
  labels?: M;
  /**
   * Queries already spent by earlier invocations of the same run (a resumed
   * attack): the count starts here. Set by the runner from the run's
   * checkpoint, never by the attack; the count only ever grows.
   */
  spent?: number;
  /**
   * The official MeCo evaluation's protocol, which no real black box offers:
   * the zeroth-order gradient estimate's queries ({@linkcode BlackBox.queryForEstimation})
   * are answered by this one, the target without the defense. Set by the
   * runner only when an attack's config asks for it (`estimation: undefended`),
   * never by an attack. Absent (the default, a real black box): every query
   * is answered by the defense. Either way every query counts.
   */
  estimationOracle?: Defense;
}

function isCount(v: number): boolean {
  return Number.isSafeInteger(v) && v >= 0;
}

/**
 * A victim behind an API. The victim is held in a private field: no
 * property, getter, `Object.keys`, JSON or reflection reaches it, and answers
 * are detached from the victim's computation, so no gradient flows back
 * through a query.
 *
 * Every image of every answered query counts (`x.shape[0]` per call). A query
 * that would take the count past `budget` is refused with a
 * {@linkcode BudgetExceededError} and counts nothing; a malformed query is a
 * {@linkcode QueryShapeError} and counts nothing.
 *
 * @example
 * ```ts ignore
 * const bb = new BlackBox(undefended(victim), { imageShape: [28, 28, 1], numClasses: 10, budget: 1e6 });
 * const p = bb.query(x); // [n, 10] probabilities; bb.queries grew by n
 * p.dispose();
 * ```
 */
export class BlackBox<M extends LabelMode = LabelMode> {
  readonly #defense: Defense;
  readonly #estimationOracle: Defense | undefined;
  readonly #imageShape: readonly [number, number, number];
  readonly #numClasses: number;
  readonly #budget: number;
  readonly #labels: M;
  #queries: number;

  /**
   * A black box over `defense` that has answered `opts.spent` queries; throws on invalid options.
   *
   * @param defense the victim's answers (a defense, or the undefended model); kept private, never disposed
   * @param opts shape, classes, budget, label mode and queries already spent
   */
  constructor(defense: Defense, opts: BlackBoxOptions<M>) {
    const [h, w, c] = opts.imageShape;
    if (![h, w, c].every((d) => Number.isInteger(d) && d > 0) || opts.imageShape.length !== 3) {
      throw new RangeError(`BlackBox: imageShape must be [h, w, c] of positive integers, got [${opts.imageShape}]`);
    }
    if (!Number.isInteger(opts.numClasses) || opts.numClasses < 2) {
      throw new RangeError(`BlackBox: numClasses must be an integer ≥ 2, got ${opts.numClasses}`);
    }
    if (!isCount(opts.budget)) {
      throw new RangeError(`BlackBox: budget must be a non-negative integer, got ${opts.budget}`);
    }
    const spent = opts.spent ?? 0;
    if (!isCount(spent) || spent > opts.budget) {
      throw new RangeError(`BlackBox: spent must be an integer in [0, budget = ${opts.budget}], got ${spent}`);
    }
    const labels = opts.labels ?? "soft";
    if (labels !== "soft" && labels !== "hard") {
      throw new RangeError(`BlackBox: labels must be "soft" or "hard", got ${JSON.stringify(labels)}`);
    }
    if (typeof defense?.predict !== "function") throw new TypeError("BlackBox: defense must have a predict(x) method");
    if (opts.estimationOracle !== undefined && typeof opts.estimationOracle.predict !== "function") {
      throw new TypeError("BlackBox: estimationOracle must have a predict(x) method");
    }
    this.#defense = defense;
    this.#estimationOracle = opts.estimationOracle;
    this.#imageShape = Object.freeze([h, w, c] as [number, number, number]);
    this.#numClasses = opts.numClasses;
    this.#budget = opts.budget;
    this.#labels = labels as M;
    this.#queries = spent;
    Object.freeze(this);
  }

  /** Images queried so far (including those `spent` before this invocation). */
  get queries(): number {
    return this.#queries;
  }
  /** The query budget. */
  get budget(): number {
    return this.#budget;
  }
  /** Queries left: `budget − queries`. */
  get remaining(): number {
    return this.#budget - this.#queries;
  }
  /** Shape [h, w, c] of one image. */
  get imageShape(): readonly [number, number, number] {
    return this.#imageShape;
  }
  /** Number of classes. */
  get numClasses(): number {
    return this.#numClasses;
  }
  /** The label mode: `soft` (probabilities) or `hard` (top-1 labels). */
  get labels(): M {
    return this.#labels;
  }

  /**
   * Answers one batch of queries: images `x` [n, h, w, c] in [-1, 1] give
   * probabilities [n, k] (`soft`) or int32 top-1 labels [n] (`hard`). The
   * caller owns (and disposes) the answer; `x` is not disposed. Counts n.
   *
   * @throws {QueryShapeError} when `x` is not a float32 batch of the declared image shape
   * @throws {BudgetExceededError} when n more queries would exceed the budget
   */
  query(x: tf.Tensor4D): Answer<M> {
    return this.#answer(x, this.#defense);
  }

  /**
   * Answers the queries of a zeroth-order gradient estimate: exactly as
   * {@linkcode query} (counted, within the budget), except under the official
   * evaluation protocol (`estimationOracle` set), where the undefended target
   * answers them. Attacks call it for estimation queries and `query` for the
   * rest, so the protocol is chosen where the black box is built.
   */
  queryForEstimation(x: tf.Tensor4D): Answer<M> {
    return this.#answer(x, this.#estimationOracle ?? this.#defense);
  }

  /** "real black box", or the official protocol's name when estimation queries see the undefended target. */
  get protocol(): "real black box" | "official (undefended estimation)" {
    return this.#estimationOracle === undefined ? "real black box" : "official (undefended estimation)";
  }

  #answer(x: tf.Tensor4D, answerer: Defense): Answer<M> {
    const [h, w, c] = this.#imageShape;
    const expected = `[n, ${h}, ${w}, ${c}] float32 with n ≥ 1`;
    if (!(x instanceof tf.Tensor)) throw new QueryShapeError(expected, `a ${typeof x} (not a tensor)`);
    const s = x.shape;
    if (s.length !== 4 || s[1] !== h || s[2] !== w || s[3] !== c || s[0] < 1 || x.dtype !== "float32") {
      throw new QueryShapeError(expected, `[${s.join(", ")}] ${x.dtype}`);
    }
    const n = s[0];
    if (this.#queries + n > this.#budget) throw new BudgetExceededError(this.#queries, n, this.#budget);
    const k = this.#numClasses;
    const answer = tf.tidy(() => {
      const probs = answerer.predict(x);
      if (!(probs instanceof tf.Tensor) || probs.rank !== 2 || probs.shape[0] !== n || probs.shape[1] !== k) {
        throw new DefenseOutputError(`[${n}, ${k}]`, probs instanceof tf.Tensor ? `[${probs.shape}]` : typeof probs);
      }
      const out = this.#labels === "hard" ? tf.argMax(probs, 1) : tf.cast(probs, "float32");
      return detach(out);
    });
    this.#queries += n;
    return answer as Answer<M>;
  }

  /** The public state only: mode, budget, count, shape, classes. */
  toJSON(): {
    labels: M;
    budget: number;
    queries: number;
    imageShape: number[];
    numClasses: number;
    protocol: BlackBox["protocol"];
  } {
    return {
      protocol: this.protocol,
      labels: this.#labels,
      budget: this.#budget,
      queries: this.#queries,
      imageShape: [...this.#imageShape],
      numClasses: this.#numClasses,
    };
  }

  /** Deno's `console.log` / `Deno.inspect` shows the public state only. */
  [Symbol.for("Deno.customInspect")](): string {
    return `BlackBox ${JSON.stringify(this.toJSON())}`;
  }
}
