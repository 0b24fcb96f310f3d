/**
 * `deno task bench` rows for the defenses: one query through each defense
 * around an (untrained, seeded) LeNet-5 MNIST victim at batch 1 and batch 256.
 * Latency does not depend on the weights' values, so no trained model is
 * needed; results/defense_cost/ has the same measurement on the trained victim.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { DefenseConfig } from "../config/mod.ts";
import { buildDefense } from "../defenses/build.ts";
import type { Defense } from "../defenses/defense.ts";
import { mecoDefense } from "../defenses/meco.ts";
import { lenet5 } from "../models/lenet.ts";
import { perturbationNet } from "../models/perturbation.ts";
import type { Workload } from "./workloads.ts";

const SHAPE: [number, number, number] = [28, 28, 1];

/** The defenses benchmarked, as config entries (L1 budget 1.0 for the output perturbations). */
const ENTRIES: { label: string; cfg: DefenseConfig | "meco" }[] = [
  { label: "none", cfg: { type: "none" } },
  { label: "randp", cfg: { type: "randp", eps: 1, argmax_preserving: true } },
  { label: "mad", cfg: { type: "mad", eps: 1, argmax_preserving: false, surrogate_init: "random" } },
  { label: "grad", cfg: { type: "grad", eps: 1, argmax_preserving: true, surrogate_init: "random", scope: "head" } },
  {
    label: "grad_full",
    cfg: { type: "grad", eps: 1, argmax_preserving: true, surrogate_init: "random", scope: "full" },
  },
  { label: "reverse_sigmoid", cfg: { type: "reverse_sigmoid", beta: 1, gamma: 0.1 } },
  { label: "gaussian_noise", cfg: { type: "gaussian_noise", std: 0.1 } },
  { label: "meco", cfg: "meco" }, // h of width 16, as in the local profile
];

/**
 * The victim's seed, and the defenses' (another: a random surrogate of the victim's seed would be the victim itself,
 * agreeing with every answer, so GRAD's coefficients would all be zero and it would move no mass).
 */
const VICTIM_SEED = 0;
const DEFENSE_SEED = 1;

function defenseFor(
  cfg: DefenseConfig | "meco",
  victim: tf.LayersModel,
): { defense: Defense; owned: tf.LayersModel[] } {
  if (cfg !== "meco") {
    return {
      defense: buildDefense(cfg, victim, { seed: DEFENSE_SEED, imageShape: SHAPE, numClasses: 10, arch: "lenet5" }),
      owned: [],
    };
  }
  const perturb = perturbationNet({ imageShape: SHAPE, width: 16, bound: 1, seed: 1 });
  return { defense: mecoDefense({ target: victim, perturb }, { seed: 0 }), owned: [perturb] };
}

/** Defense query workloads, named `defense_<type>_b1` and `defense_<type>_b256`. */
export const DEFENSE_WORKLOADS: Workload[] = ENTRIES.flatMap(({ label, cfg }) =>
  ([1, 256] as const).map((n): Workload => ({
    name: `defense_${label}_b${n}`,
    // grad_full runs k backward passes per image (~16 s per batch of 256): one timed call
    reps: n === 1 ? [5, 50] : label === "grad_full" ? [0, 1] : [3, 15],
    setup: () => {
      const victim = lenet5({ seed: VICTIM_SEED });
      const { defense, owned } = defenseFor(cfg, victim);
      const x = tf.randomUniform([n, ...SHAPE], -1, 1, "float32", 1) as tf.Tensor4D;
      return {
        run: () => {
          const p = defense.predict(x);
          p.dataSync();
          p.dispose();
        },
        dispose: () => {
          defense.dispose();
          owned.forEach((m) => m.dispose());
          victim.dispose();
          x.dispose();
        },
      };
    },
  }))
);
