/**
 * Schema of the `victim` section: the model under attack and how it is trained.
 *
 * @module
 */
import { z } from "zod";
import { ArchSchema, milestones, nonNegative, positive, positiveInt } from "./fields.ts";

/**
 * `victim.train:` — supervised training of the victim. `lr_milestones` are fractions of the run
 * in (0, 1) at which the learning rate is multiplied by `lr_gamma`; `momentum` applies to SGD only.
 */
export const VictimTrainSchema = z.object({
  epochs: positiveInt,
  batch_size: positiveInt,
  optimizer: z.enum(["sgd", "adam"]),
  lr: positive,
  momentum: z.number().finite().min(0).lt(1).optional(),
  weight_decay: nonNegative.default(0),
  lr_milestones: milestones.default([]),
  lr_gamma: z.number().finite().gt(0).max(1).default(0.1),
  /** Standard augmentation: random crop of the image zero-padded by `crop_padding`, random horizontal flip. */
  augment: z.object({
    crop_padding: z.number().int().nonnegative().default(0),
    flip: z.boolean().default(false),
  }).strict().optional(),
}).strict().superRefine((t, ctx) => {
  if (t.optimizer !== "sgd" && t.momentum !== undefined) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ["momentum"],
      message: `momentum applies only to optimizer sgd, received optimizer ${t.optimizer}`,
    });
  }
});

/** A validated `victim.train` section. */
export type VictimTrainConfig = z.infer<typeof VictimTrainSchema>;

/**
 * `victim:` — architecture, a channel-width multiplier (1 = the architecture as published) and
 * the training recipe.
 */
export const VictimSchema = z.object({
  arch: ArchSchema,
  width: positive.default(1),
  train: VictimTrainSchema,
}).strict();

/** A validated `victim` section. */
export type VictimConfig = z.infer<typeof VictimSchema>;
