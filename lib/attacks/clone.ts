/**
 * Built-in clone architectures by `clone_arch` name. Architectures without a
 * built-in factory are plugged in by passing `makeClone` to the attack.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { ArchName } from "../config/fields.ts";
import { lenet5 } from "../models/lenet.ts";
import { resnet8x } from "../models/resnet_8x.ts";

/** A `clone_arch` value. */
export type CloneArch = ArchName;

/** Builds a fresh clone (logits) initialised from `seed`. */
export type CloneFactory = (seed: number) => tf.LayersModel;

/** Raised for a `clone_arch` that has no built-in factory. */
export class UnknownCloneArchError extends Error {
  /**
   * An error whose message names the architecture and how to plug one in.
   *
   * @param arch the requested architecture
   */
  constructor(readonly arch: string) {
    super(`clone_arch ${JSON.stringify(arch)} has no built-in factory here; pass makeClone(seed) to the attack`);
    this.name = "UnknownCloneArchError";
  }
}

/**
 * The factory for `arch` at the black box's image shape and class count:
 * `lenet5`, `resnet18_8x` or `resnet34_8x`.
 *
 * @example
 * ```ts ignore
 * const make = cloneFactory("lenet5", [28, 28, 1], 10);
 * const clone = make(0);
 * ```
 */
export function cloneFactory(
  arch: CloneArch,
  imageShape: readonly [number, number, number],
  classes: number,
): CloneFactory {
  const inputShape = [...imageShape] as [number, number, number];
  switch (arch) {
    case "lenet5":
      return (seed) => lenet5({ seed, inputShape, classes });
    case "resnet18_8x":
      return (seed) => resnet8x({ depth: 18, seed, inputShape, classes });
    case "resnet34_8x":
      return (seed) => resnet8x({ depth: 34, seed, inputShape, classes });
    default:
      throw new UnknownCloneArchError(arch);
  }
}
