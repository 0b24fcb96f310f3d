/**
 * The one contract of a victim's answers, defended or not: every defense
 * implements it, the undefended victim is one (`undefended` in
 * lib/defenses/undefended.ts), and a `BlackBox` (lib/victim) holds one out of
 * the attacks' reach.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/**
 * A defended (or undefended) victim: images [n, h, w, c] in [-1, 1] →
 * probabilities [n, k], in inference mode.
 */
export interface Defense {
  /** Short name, e.g. "undefended", "meco". */
  readonly name: string;
  /** Output probabilities [n, k] for the batch `x` [n, h, w, c]; the caller disposes. */
  predict(x: tf.Tensor4D): tf.Tensor2D;
  /** Frees what the defense owns (not the victim model it wraps unless stated). */
  dispose(): void;
}
