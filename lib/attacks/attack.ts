/**
 * The interface every model-extraction attack implements (in the spirit of
 * ART's `ExtractionAttack`): given only a {@linkcode BlackBox} and a query
 * budget, return a clone.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { BlackBox } from "../victim/black_box.ts";

/** One point of an attack's learning curve. */
export interface CurvePoint {
  /** Black-box queries spent when the clone was evaluated. */
  queries: number;
  /** The clone's accuracy (as returned by {@linkcode AttackContext.evaluate}). */
  cloneAcc: number;
  /** Measurements an attack takes beside the accuracy, by name (e.g. DFME's estimate cosine), when asked to. */
  diagnostics?: Record<string, number>;
}

/** What an attack reports as it goes. */
export interface AttackProgress {
  /** Queries spent so far (the black box's count). */
  queries: number;
  /** The attack's query budget. */
  budget: number;
  /** Iterations done (attack-specific unit). */
  iteration: number;
  /** Clone accuracy, when it was evaluated at this point. */
  cloneAcc?: number;
  /** Wall time of the run so far, over all its sessions (resumes included). */
  elapsedMs: number;
}

/** Everything an attack gets from the runner besides the black box and budget. */
export interface AttackContext {
  /** The run's seed: initialisation and every random draw derive from it. */
  seed: number;
  /** Called after every iteration; may be async (awaited). */
  onProgress?: (p: AttackProgress) => void | Promise<void>;
  /**
   * Scores the clone (the runner passes test-set accuracy). The attack calls
   * it every `eval_every` queries and at the end, and records the curve. It
   * must not train or otherwise change the clone.
   */
  evaluate?: (clone: tf.LayersModel) => number | Promise<number>;
  /**
   * A directory the attack owns for checkpoints: it saves there every
   * `checkpoint_every` queries and at the end, and resumes from it when a
   * checkpoint exists. The runner must then build the black box with
   * `spent: await checkpointQueries(dir)` (see `lib/attacks/checkpoint.ts`).
   */
  checkpointDir?: string;
}

/** The outcome of an attack. */
export interface AttackResult {
  /** The extracted clone (logits); the caller owns and disposes it. */
  clone: tf.LayersModel;
  /** Queries spent in total (the black box's count at the end). */
  queries: number;
  /** The learning curve, in query order. */
  curve: CurvePoint[];
}

/**
 * A model-extraction attack. It sees only the black box (and its own
 * configuration): never the victim's weights nor the defense.
 */
export interface Attack {
  /** A short label, e.g. "dfme". */
  name: string;
  /**
   * Runs the attack until `budget` queries (counted by the black box) are
   * spent or no further full iteration fits.
   */
  extract(blackBox: BlackBox, budget: number, ctx: AttackContext): Promise<AttackResult>;
}
