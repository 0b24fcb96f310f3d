/**
 * Attacks by config entry: the runner's single place that maps `attacks[].type`
 * to an implementation.
 *
 * @module
 */
import type { AttackConfig } from "../config/mod.ts";
import { type Attack, checkpointQueries, DfmeAttack, JbdaAttack, KnockoffAttack } from "../attacks/mod.ts";
import { buildClassifier } from "../models/registry.ts";
import type { AttackerData } from "./attacker_data.ts";

export { checkpointQueries };

/** What an attack factory needs to know about the victim's interface (nothing more). */
export interface AttackSpec {
  /** Shape [h, w, c] of one query image. */
  imageShape: [number, number, number];
  /** Number of classes the black box answers with. */
  numClasses: number;
  /** The attacker's own data (surrogate sets, seed pool), for the data-based attacks. */
  data?: AttackerData;
}

function needData(a: AttackConfig, spec: AttackSpec): AttackerData {
  if (spec.data === undefined) throw new Error(`attack '${a.type}' needs attacker data (AttackSpec.data)`);
  return spec.data;
}

/** Builds the attack described by `a`; an attack not in this build is an error naming it. */
export function buildAttack(a: AttackConfig, spec: AttackSpec): Attack {
  switch (a.type) {
    case "dfme":
      return new DfmeAttack(a, {
        makeClone: (seed) =>
          buildClassifier(a.clone_arch, { seed, inputShape: spec.imageShape, classes: spec.numClasses }),
      });
    case "knockoff": {
      const data = needData(a, spec);
      return new KnockoffAttack(a, {
        surrogate: () => data.surrogate(a.surrogate_dataset),
        makeClone: (seed) =>
          buildClassifier(a.clone_arch, { seed, inputShape: spec.imageShape, classes: spec.numClasses }),
      });
    }
    case "jbda": {
      const data = needData(a, spec);
      return new JbdaAttack(a, {
        seedPool: () => data.seedPool(),
        makeClone: (seed) =>
          buildClassifier(a.clone_arch, { seed, inputShape: spec.imageShape, classes: spec.numClasses }),
      });
    }
    default:
      throw new Error(`attack '${a.type}' is not available in this build (configs: attacks[].type)`);
  }
}
