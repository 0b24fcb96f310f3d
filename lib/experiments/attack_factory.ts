/**
 * Attacks by config entry: the runner's single place that maps `attacks[].type`
 * to an implementation.
 *
 * @module
 */
import type { AttackConfig } from "../config/mod.ts";
import {
  AdaptiveAttack,
  type Attack,
  checkpointQueries,
  DfmeAttack,
  DfmsHlAttack,
  MazeAttack,
} from "../attacks/mod.ts";
import type { LabelKind } from "../config/fields.ts";
import { buildClassifier } from "../models/registry.ts";

export { checkpointQueries };

/** What an attack factory needs to know about the victim's interface (nothing more). */
export interface AttackSpec {
  /** Shape [h, w, c] of one query image. */
  imageShape: [number, number, number];
  /** Number of classes the black box answers with. */
  numClasses: number;
}

/** Builds the attack described by `a`; an attack not in this build is an error naming it. */
export function buildAttack(a: AttackConfig, spec: AttackSpec): Attack {
  const makeClone = (seed: number) =>
    buildClassifier(a.clone_arch, {
      seed,
      inputShape: spec.imageShape,
      classes: spec.numClasses,
      width: a.clone_width,
    });
  switch (a.type) {
    case "dfme":
      return new DfmeAttack(a, { makeClone });
    case "maze":
      return new MazeAttack(a, { makeClone });
    case "dfms_hl":
      return new DfmsHlAttack(a, { makeClone });
    case "adaptive":
      return new AdaptiveAttack(a, { makeClone });
    default:
      throw new Error(`attack '${a.type}' is not available in this build (configs: attacks[].type)`);
  }
}

/** What the black box answers for attack `a`: its `label` setting, top-1 labels for DFMS-HL, else probabilities. */
export function labelModeOf(a: AttackConfig): LabelKind {
  if ("label" in a) return a.label;
  return a.type === "dfms_hl" ? "hard" : "soft";
}
