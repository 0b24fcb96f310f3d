/**
 * Classifier architectures by config name.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { densenet121 } from "./densenet.ts";
import { googlenet } from "./googlenet.ts";
import { lenet5 } from "./lenet.ts";
import { mobilenetV2 } from "./mobilenet_v2.ts";
import { resnet8x } from "./resnet_8x.ts";

/** What {@linkcode buildClassifier} needs besides the architecture name. */
export interface ClassifierSpec {
  /** Initialisation seed. */
  seed: number;
  /** Image shape [h, w, c]. */
  inputShape: [number, number, number];
  /** Number of classes. */
  classes: number;
  /** Width multiplier (1 = the paper's). */
  width?: number;
}

/** Architectures available in this build. */
export const CLASSIFIERS: Record<string, (s: ClassifierSpec) => tf.LayersModel> = {
  lenet5: (s) => lenet5({ seed: s.seed, inputShape: s.inputShape, classes: s.classes }),
  resnet18_8x: (s) => resnet8x({ depth: 18, ...s }),
  resnet34_8x: (s) => resnet8x({ depth: 34, ...s }),
  mobilenet_v2: (s) => mobilenetV2(s),
  densenet121: (s) => densenet121(s),
  googlenet: (s) => googlenet(s),
};

/** Builds the classifier `arch` (logits out); an unknown name is an error listing the available ones. */
export function buildClassifier(arch: string, spec: ClassifierSpec): tf.LayersModel {
  const make = CLASSIFIERS[arch];
  if (make === undefined) {
    throw new Error(`architecture '${arch}' is not available; available: ${Object.keys(CLASSIFIERS).join(", ")}`);
  }
  return make(spec);
}
