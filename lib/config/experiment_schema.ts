/**
 * Schema of a resolved experiment config: what the runner executes after the profile is merged in.
 *
 * @module
 */
import { z } from "zod";
import { AttackSchema } from "./attack_schema.ts";
import { DatasetSchema } from "./dataset_schema.ts";
import { DefenseSchema } from "./defense_schema.ts";
import { BackendSchema, nonNegativeInt, positiveInt, snakeCase } from "./fields.ts";
import { VictimSchema } from "./victim_schema.ts";

/** `eval:` — `test_subset` evaluates on the first N test images (all when absent). */
export const EvalSchema = z.object({
  test_subset: positiveInt.optional(),
  batch_size: positiveInt.default(512),
}).strict();

/** A validated `eval` section. */
export type EvalConfig = z.infer<typeof EvalSchema>;

/** `output:` — where results go; `dir` defaults to `results/<name>`. */
export const OutputSchema = z.object({
  dir: z.string().min(1).optional(),
}).strict();

/**
 * `scheduler:` — how `deno task sweep --scheduler slurm` submits this experiment's cells (sbatch options; the
 * command's flags win). Not part of the config's hash: where cells run does not change what they compute.
 */
export const SchedulerSchema = z.object({
  partition: z.string().min(1).optional(),
  gres: z.string().min(1).optional(),
  time: z.string().min(1).optional(),
  cpus_per_task: positiveInt.optional(),
  mem: z.string().min(1).optional(),
  /** Further sbatch options, written as given (e.g. `--account=proj`). */
  sbatch: z.array(z.string().min(1)).optional(),
  /** Shell lines run before each array task (e.g. `module load deno`). */
  setup: z.array(z.string().min(1)).optional(),
}).strict();

/** A validated `scheduler` section. */
export type SchedulerConfig = z.infer<typeof SchedulerSchema>;

const ExperimentObjectSchema = z.object({
  name: snakeCase,
  description: z.string(),
  backend: BackendSchema.optional(),
  seeds: z.array(nonNegativeInt).min(1),
  dataset: DatasetSchema,
  victim: VictimSchema,
  defenses: z.array(DefenseSchema).min(1),
  attacks: z.array(AttackSchema).default([]),
  eval: EvalSchema.default({}),
  output: OutputSchema.default({}),
  scheduler: SchedulerSchema.optional(),
}).strict();

type Checked = z.infer<typeof ExperimentObjectSchema>;

function crossCheck(c: Checked, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
  const firstSeed = new Map<number, number>();
  c.seeds.forEach((s, i) => {
    const j = firstSeed.get(s);
    if (j === undefined) firstSeed.set(s, i);
    else issue(["seeds", i], `duplicate seed ${s} (also seeds.${j})`);
  });
  for (const list of ["defenses", "attacks"] as const) {
    const first = new Map<string, number>();
    c[list].forEach((e, i) => {
      const label = e.name ?? e.type;
      const j = first.get(label);
      if (j === undefined) first.set(label, i);
      else {
        issue(
          [list, i, "name"],
          `duplicate label ${JSON.stringify(label)} (also ${list}.${j}); give each entry a distinct name`,
        );
      }
    });
  }
  const defenseLabels = c.defenses.map((d) => d.name ?? (d.type === "none" ? "undefended" : d.type));
  c.attacks.forEach((a, i) => {
    a.defenses?.forEach((label, j) => {
      if (!defenseLabels.includes(label)) {
        issue(
          ["attacks", i, "defenses", j],
          `expected one of the defenses (${defenseLabels.join(", ")}), received ${JSON.stringify(label)}`,
        );
      }
    });
    // Refinements also run on data with range errors; compare only against a usable budget.
    if (!Number.isInteger(a.budget) || a.budget <= 0) return;
    for (const k of ["eval_every", "checkpoint_every"] as const) {
      const v = a[k];
      if (v !== undefined && v > a.budget) {
        issue(
          ["attacks", i, k],
          `expected at most the budget (${a.budget}) queries, received ${v}`,
        );
      }
    }
    if (a.type === "jbda" && a.seed_size > a.budget) {
      issue(
        ["attacks", i, "seed_size"],
        `expected at most the budget (${a.budget}), received ${a.seed_size}`,
      );
    }
  });
}

/**
 * A resolved experiment config (profile already merged): `name` (snake_case), `description`,
 * optional `backend`, `seeds`, `dataset`, `victim`, `defenses`, `attacks`, `eval`, `output`.
 * Unknown keys are rejected at every level. Besides per-field checks it requires distinct seeds,
 * distinct defense and attack labels (`name`, defaulting to `type`), and `eval_every`,
 * `checkpoint_every`, `seed_size` within an attack's budget. Parsing fills `output.dir`.
 */
export const ExperimentSchema = ExperimentObjectSchema.superRefine(crossCheck)
  .transform((c) => ({
    ...c,
    output: { ...c.output, dir: c.output.dir ?? `results/${c.name}` },
  }));

/** A validated, resolved experiment config: the runner's input. */
export type ExperimentConfig = z.infer<typeof ExperimentSchema>;
/** What may be written for a resolved config before defaults are filled in (e.g. from a notebook). */
export type ExperimentConfigInput = z.input<typeof ExperimentSchema>;

/** The label of a defense or attack entry: its `name`, else its `type`. */
export function entryName(
  entry: { readonly name?: string; readonly type: string },
): string {
  return entry.name ?? entry.type;
}
