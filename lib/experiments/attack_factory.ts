/**
 * Attacks by config entry: the runner's single place that maps `attacks[].type`
 * to an implementation.
 *
 * @module
 */
import type { AttackConfig } from "../config/mod.ts";
import { type Attack, checkpointQueries, DfmeAttack } from "../attacks/mod.ts";
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
  switch (a.type) {
    case "dfme":
      return new DfmeAttack(a, {
        makeClone: (seed) =>
          buildClassifier(a.clone_arch, {
            seed,
            inputShape: spec.imageShape,
            classes: spec.numClasses,
            width: a.clone_width,
          }),
      });
    default:
      throw new Error(`attack '${a.type}' is not available in this build (configs: attacks[].type)`);
  }
}
