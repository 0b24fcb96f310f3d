/**
 * A cheaper gradient for Mean on the wasm backend. tfjs computes it as
 * `div(mul(dy, ones(x.shape)), n)`, and `ones` fills a JS array the size of x
 * element by element and uploads it: for the two Means of every BatchNorm in
 * training this was the largest single cost of a ResNet step. Here dy is
 * divided first (a small tensor) and then broadcast with Tile (memory copies):
 * the same values, bit for bit, since `dy · 1 / n = dy / n`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { overrideGradient } from "./gradients.ts";

/** Installs the Mean gradient (idempotent). */
export function registerMeanGradient(): void {
  overrideGradient("Mean", (dy, saved, attrs) => {
    const [x] = saved;
    const axes = tf.util.parseAxisParam((attrs as unknown as tf.MeanAttrs).axis, x.shape);
    const reduceSize = tf.util.sizeFromShape(axes.map((a) => x.shape[a]));
    return {
      x: () => {
        const expanded = x.shape.slice();
        for (const a of axes) expanded[a] = 1;
        return tf.broadcastTo(tf.div(tf.reshape(dy, expanded), reduceSize), x.shape);
      },
    };
  });
}
