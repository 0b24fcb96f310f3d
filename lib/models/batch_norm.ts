/**
 * The project's BatchNorm layer: tfjs's BatchNormalization (same weights,
 * config and inference path, so checkpoints interchange), whose training-mode
 * forward runs as one fused kernel — batch statistics, normalisation, scale
 * and shift in one oneDNN pass, and the whole gradient (through the batch
 * statistics) in one more (`BATCH_NORM_TRAIN`, from lib/backend). Where
 * that kernel is not available (other backends, `MECO_NATIVE=0`, no oneDNN)
 * it is exactly tfjs's layer.
 *
 * Moving averages follow tfjs (and Keras): `moving ← moving − (moving − batch)·(1 − momentum)`
 * with the biased batch variance.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { BATCH_NORM_TRAIN, batchNormTrainingAvailable } from "../backend/mod.ts";

/**
 * Constructor arguments: those of `tf.layers.batchNormalization`, plus `relu`:
 * apply ReLU to the output (fused into the training kernel where it runs).
 */
export type BatchNormArgs = NonNullable<Parameters<typeof tf.layers.batchNormalization>[0]> & { relu?: boolean };

type LayerVariable = { read(): tf.Tensor; write(t: tf.Tensor): void };
/** Fields of tfjs's BatchNormalization that its typings mark private. */
interface BatchNormInternals {
  axis: number;
  momentum: number;
  epsilon: number;
  gamma?: LayerVariable;
  beta?: LayerVariable;
  movingMean: LayerVariable;
  movingVariance: LayerVariable;
}

const BatchNormalization = Object.getPrototypeOf(tf.layers.batchNormalization({})).constructor as new (
  args?: NonNullable<Parameters<typeof tf.layers.batchNormalization>[0]>,
) => tf.layers.Layer;

/** BatchNormalization with a fused training-mode kernel (see the module doc), optionally followed by ReLU. */
export class MecoBatchNorm extends BatchNormalization {
  /** Class name for tfjs serialization. */
  static readonly className = "MecoBatchNorm";
  /** Whether ReLU follows the normalisation (PyTorch's BatchNorm2d + ReLU as one layer). */
  readonly relu: boolean;

  constructor(args: BatchNormArgs = {}) {
    const { relu = false, ...rest } = args;
    super(rest);
    this.relu = relu;
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config = super.getConfig();
    return this.relu ? { ...config, relu: true } : config;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { [key: string]: unknown }): tf.Tensor | tf.Tensor[] {
    const fused = this.fusedTraining(Array.isArray(inputs) ? inputs[0] : inputs, kwargs);
    if (fused !== undefined) return fused;
    const y = super.call(inputs, kwargs);
    return this.relu ? tf.relu(y as tf.Tensor) : y;
  }

  /** The training-mode output by the fused kernel (ReLU included), or undefined where it does not apply. */
  private fusedTraining(x: tf.Tensor, kwargs: { [key: string]: unknown }): tf.Tensor | undefined {
    const self = this as unknown as BatchNormInternals;
    const lastAxis = self.axis === -1 || self.axis === x.rank - 1;
    if (
      kwargs["training"] !== true || !lastAxis || x.dtype !== "float32" || x.rank < 2 || x.size === 0 ||
      self.gamma === undefined || self.beta === undefined || !batchNormTrainingAvailable()
    ) {
      return undefined;
    }
    return tf.tidy(() => {
      const [y, , , movingMean, movingVariance] = tf.engine().runKernel(
        BATCH_NORM_TRAIN,
        {
          x,
          scale: self.gamma!.read(),
          offset: self.beta!.read(),
          movingMean: self.movingMean.read(),
          movingVariance: self.movingVariance.read(),
        },
        { varianceEpsilon: self.epsilon, momentum: self.momentum, relu: this.relu } as unknown as tf.NamedAttrMap,
      ) as tf.Tensor[];
      self.movingMean.write(movingMean);
      self.movingVariance.write(movingVariance);
      return y;
    });
  }
}
tf.serialization.registerClass(
  MecoBatchNorm as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>,
);
