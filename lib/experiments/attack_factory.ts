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
  type DfmeModelOptions,
  DfmsHlAttack,
  JbdaAttack,
  KnockoffAttack,
  MazeAttack,
} from "../attacks/mod.ts";
import type { LabelKind } from "../config/fields.ts";
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
  /**
   * DFME: measure {@linkcode dfmeDiagnostics} at every evaluation point (outside the attack and its query count).
   * `oracle` answers as the black box does, `estimationOracle` as it answers the estimate's queries when that
   * differs (the official protocol), `victim` is the model behind the defense (logits).
   */
  diagnostics?: DfmeModelOptions["diagnostics"];
}

function needData(a: AttackConfig, spec: AttackSpec): AttackerData {
  if (spec.data === undefined) throw new Error(`attack '${a.type}' needs attacker data (AttackSpec.data)`);
  return spec.data;
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
      return new DfmeAttack(a, { makeClone, diagnostics: spec.diagnostics });
    case "maze":
      return new MazeAttack(a, { makeClone });
    case "dfms_hl":
      return new DfmsHlAttack(a, { makeClone });
    case "adaptive":
      return new AdaptiveAttack(a, { makeClone });
    case "knockoff": {
      const data = needData(a, spec);
      return new KnockoffAttack(a, { surrogate: () => data.surrogate(a.surrogate_dataset), makeClone });
    }
    case "jbda": {
      const data = needData(a, spec);
      return new JbdaAttack(a, { seedPool: () => data.seedPool(), makeClone });
    }
    default:
      throw new Error(
        `attack '${(a as { type: string }).type}' is not available in this build (configs: attacks[].type)`,
      );
  }
}

/** What the black box answers for attack `a`: its `label` setting, top-1 labels for DFMS-HL, else probabilities. */
export function labelModeOf(a: AttackConfig): LabelKind {
  if ("label" in a) return a.label;
  return a.type === "dfms_hl" ? "hard" : "soft";
}
