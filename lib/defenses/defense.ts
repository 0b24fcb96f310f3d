/**
 * The one interface every defense implements: it wraps a victim's prediction.
 * A BlackBox holds a Defense; attacks never see it.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** A defended (or undefended) victim: images in [-1, 1] → probabilities. */
export interface Defense {
  /** Short name, e.g. "undefended", "meco". */
  readonly name: string;
  /** Output probabilities [n, k] for the batch `x` [n, h, w, c]; the caller disposes. */
  predict(x: tf.Tensor4D): tf.Tensor2D;
  /** Frees what the defense owns (not the victim model it wraps unless stated). */
  dispose(): void;
}
