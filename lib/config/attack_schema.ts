/**
 * Schema of the `attacks` list: every model-extraction attack run against each defense,
 * discriminated by `type`. Defaults follow the respective papers' released settings.
 *
 * Shared fields: `budget` (black-box queries, counted by the BlackBox), `clone_arch`,
 * `eval_every` / `checkpoint_every` (in queries), an optional `name` label.
 * Learning-rate schedules are `lr_decay_at` (fractions of the budget in (0, 1)) and `lr_gamma`.
 *
 * @module
 */
import { z } from "zod";
import {
  ArchSchema,
  DatasetNameSchema,
  entryLabel,
  LabelKindSchema,
  milestones,
  nonNegative,
  nonNegativeInt,
  positive,
  positiveInt,
} from "./fields.ts";

const common = {
  name: entryLabel.optional(),
  budget: positiveInt,
  clone_arch: ArchSchema.default("lenet5"),
  /** Width multiplier of the clone (absent: 1, the architecture as published). */
  clone_width: positive.optional(),
  eval_every: positiveInt.optional(),
  checkpoint_every: positiveInt.optional(),
  /** Run only against these defenses (their labels: `name`, else the type; `undefended` for `none`); all when absent. */
  defenses: z.array(z.string().min(1)).min(1).optional(),
};

const momentum = z.number().finite().min(0).lt(1);
const decay = z.number().finite().gt(0).max(1);

/**
 * Who answers the queries of a score-based attack's zeroth-order gradient estimate: `defended`
 * (absent: the default, a real black box, where every query goes through the defense) or
 * `undefended`, the official MeCo evaluation's protocol (the estimate queries the target without
 * its perturbation; only the answers the clone trains on are defended), which no real black box
 * offers. The black box counts every query either way.
 */
export const EstimationSchema: z.ZodOptional<z.ZodEnum<["defended", "undefended"]>> = z
  .enum(["defended", "undefended"])
  .optional();

/**
 * `type: dfme` — Data-Free Model Extraction (Truong et al., CVPR 2021): a generator synthesises
 * queries; its gradient through the black box is estimated by forward differences over `m`
 * random directions of step `eps`; `d_iter` clone steps per generator step.
 *
 * `lr_schedule` says where the `lr_decay_at` milestones fall: `budget` (absent: the default) at
 * those fractions of the run's iterations; `epochs` as the reference code steps its MultiStepLR,
 * once per "epoch" of `epoch_itrs` iterations (absent: 50), at epoch ⌊f · E⌋ for each fraction f,
 * where E = ⌊budget / (epoch_itrs · queries per iteration)⌋ + 1. `gen_output_bn` is the generator's last
 * BatchNorm: `fixed` (absent: the reference's, without affine parameters) or `learned`. `p_floor`
 * is where the victim's probabilities are clamped before the log of the logit recovery (absent:
 * 1e-30, the reference's): an attacker who knows the answers are rounded or noisy can raise it
 * so that the zeros those defenses return do not become targets of −69.
 */
export const DfmeAttackSchema = z.object({
  ...common,
  type: z.literal("dfme"),
  batch_size: positiveInt.default(256),
  m: positiveInt.default(1),
  g_iter: positiveInt.default(1),
  d_iter: positiveInt.default(5),
  eps: positive.default(1e-3),
  nz: positiveInt.default(256),
  gen_width: positiveInt.default(64),
  gen_lr: positive.default(1e-4),
  clone_lr: positive.default(0.1),
  clone_momentum: momentum.default(0.9),
  clone_wd: nonNegative.default(5e-4),
  lr_decay_at: milestones.default([0.1, 0.3, 0.5]),
  lr_gamma: decay.default(0.3),
  lr_schedule: z.enum(["budget", "epochs"]).optional(),
  epoch_itrs: positiveInt.optional(),
  gen_output_bn: z.enum(["fixed", "learned"]).optional(),
  p_floor: positive.max(1).optional(),
  estimation: EstimationSchema,
  loss: z.enum(["l1", "kl"]).default("l1"),
  label: LabelKindSchema.default("soft"),
}).strict();

/**
 * `type: maze` — MAZE (Kariyappa et al., CVPR 2021): zeroth-order generator training with
 * `n_dirs` random directions of step `eps`, `gen_iters` generator and `clone_iters` clone steps
 * per round, then `replay_iters` steps on the experience-replay buffer (`replay_size` most recent
 * queries; unbounded when absent). Cosine learning-rate annealing over the budget.
 */
export const MazeAttackSchema = z.object({
  ...common,
  type: z.literal("maze"),
  batch_size: positiveInt.default(128),
  n_dirs: positiveInt.default(10),
  eps: positive.default(1e-3),
  gen_iters: positiveInt.default(1),
  clone_iters: positiveInt.default(5),
  replay_iters: nonNegativeInt.default(10),
  replay_size: positiveInt.optional(),
  nz: positiveInt.default(100),
  gen_width: positiveInt.default(64),
  gen_lr: positive.default(1e-4),
  clone_lr: positive.default(0.1),
  clone_momentum: momentum.default(0.9),
  clone_wd: nonNegative.default(5e-4),
}).strict();

/**
 * `type: dfms_hl` — DFMS-HL (Sanyal et al., CVPR 2022), decision-based (hard labels only): a DCGAN
 * pretrained for `gan_pretrain_epochs` on `proxy_size` images of `proxy_dataset` (`synthetic`: random
 * shapes generated in code, the data-free setting), then alternating updates: the generator with its
 * adversarial loss plus a class-diversity loss of weight `div_weight`, the discriminator, and
 * `clone_iters` clone steps, each on `batch_size` generated plus `proxy_batch_size` proxy images
 * labelled by the victim's top-1 answers.
 */
export const DfmsHlAttackSchema = z.object({
  ...common,
  type: z.literal("dfms_hl"),
  proxy_dataset: z.union([z.literal("synthetic"), DatasetNameSchema]).default(
    "synthetic",
  ),
  batch_size: positiveInt.default(256),
  nz: positiveInt.default(100),
  gen_width: positiveInt.default(64),
  gen_lr: positive.default(2e-4),
  gan_pretrain_epochs: nonNegativeInt.default(200),
  proxy_size: positiveInt.default(50000),
  proxy_batch_size: nonNegativeInt.default(64),
  clone_iters: positiveInt.default(1),
  div_weight: nonNegative.default(500),
  clone_lr: positive.default(0.1),
  clone_momentum: momentum.default(0.9),
  clone_wd: nonNegative.default(5e-4),
  lr_decay_at: milestones.default([]),
  lr_gamma: decay.default(0.1),
}).strict();

/**
 * `type: adaptive` — the defense-aware attacker of the MeCo paper (Table 4): DFME whose queries
 * first pass through the attacker's own data-dependent random perturbation generator
 * x ↦ clip(x + h_a(x, ε)) (the same architecture as MeCo's h, `perturb_width` filters, L∞ bound
 * `perturb_bound`, a fresh ε per query), trained with `perturb_iters` Adam steps (`perturb_lr`) per
 * iteration to move each query into the interior of its class under the clone, where a
 * perturbation-based defense changes answers least. Generator and clone settings as for `dfme`.
 */
export const AdaptiveAttackSchema = DfmeAttackSchema.omit({ type: true })
  .extend({
    type: z.literal("adaptive"),
    perturb_width: positiveInt.default(16),
    perturb_bound: positive.default(0.5),
    perturb_lr: positive.default(1e-3),
    perturb_iters: nonNegativeInt.default(1),
  }).strict();

/**
 * `type: knockoff` — Knockoff Nets (Orekondy et al., CVPR 2019): query natural images of
 * `surrogate_dataset` (its train split: the attacker's own data), sampled at `random` or by the
 * `adaptive` (gradient-bandit) strategy with `reward`, then train the clone for `epochs` on the
 * transfer set. The bandit's actions are the surrogate's classes; its preferences move with step
 * `bandit_lr`; the diversity reward compares an answer with the mean of the last `div_window`
 * answers (all earlier answers when absent).
 */
export const KnockoffAttackSchema = z.object({
  ...common,
  type: z.literal("knockoff"),
  strategy: z.enum(["random", "adaptive"]).default("random"),
  surrogate_dataset: DatasetNameSchema,
  reward: z.enum(["cert", "div", "loss", "all"]).default("all"),
  bandit_lr: positive.default(0.1),
  div_window: positiveInt.optional(),
  batch_size: positiveInt.default(64),
  epochs: positiveInt.default(100),
  clone_lr: positive.default(0.01),
  clone_momentum: momentum.default(0.5),
  clone_wd: nonNegative.default(5e-4),
  lr_decay_at: milestones.default([0.6]),
  lr_gamma: decay.default(0.1),
  label: LabelKindSchema.default("soft"),
}).strict();

/**
 * `type: jbda` — Jacobian-based dataset augmentation (Papernot et al., AsiaCCS 2017): start from
 * `seed_size` test images (the attacker's small seed data), and for `rounds` substitute epochs
 * label the new points through the black box, train the clone (`epochs` each) and grow the set by
 * steps of `lambda` along the sign of the clone's Jacobian. `lambda` is in the models' image range
 * [-1, 1]: the default 0.2 is the paper's 0.1 on [0, 1] pixels.
 */
export const JbdaAttackSchema = z.object({
  ...common,
  type: z.literal("jbda"),
  seed_size: positiveInt.default(150),
  rounds: positiveInt.default(6),
  lambda: positive.default(0.2),
  epochs: positiveInt.default(10),
  batch_size: positiveInt.default(32),
  clone_lr: positive.default(0.01),
  clone_momentum: momentum.default(0.9),
  clone_wd: nonNegative.default(0),
  label: LabelKindSchema.default("hard"),
}).strict();

/** One entry of `attacks:`, discriminated by `type`. */
export const AttackSchema = z.discriminatedUnion("type", [
  DfmeAttackSchema,
  MazeAttackSchema,
  DfmsHlAttackSchema,
  AdaptiveAttackSchema,
  KnockoffAttackSchema,
  JbdaAttackSchema,
]);

/** A validated attack entry. */
export type AttackConfig = z.infer<typeof AttackSchema>;
/** The `type` of an attack entry. */
export type AttackType = AttackConfig["type"];
/** The validated entry of one attack type, e.g. `AttackOf<"dfme">`. */
export type AttackOf<T extends AttackType> = Extract<AttackConfig, { type: T }>;
/** A validated `type: dfme` entry. */
export type DfmeAttackConfig = AttackOf<"dfme">;
/** A validated `type: knockoff` entry. */
export type KnockoffAttackConfig = AttackOf<"knockoff">;
/** A validated `type: jbda` entry. */
export type JbdaAttackConfig = AttackOf<"jbda">;
