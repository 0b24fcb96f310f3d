/**
 * Shared field schemas and enumerations used by every part of the experiment schema.
 *
 * Numbers are always finite (YAML `.inf` and `.nan` are rejected).
 *
 * @module
 */
import { z } from "zod";

/** A finite number. */
export const finite: z.ZodNumber = z.number().finite();
/** A finite number > 0. */
export const positive: z.ZodNumber = z.number().finite().positive();
/** A finite number ≥ 0. */
export const nonNegative: z.ZodNumber = z.number().finite().nonnegative();
/** An integer > 0. */
export const positiveInt: z.ZodNumber = z.number().int().positive();
/** An integer ≥ 0. */
export const nonNegativeInt: z.ZodNumber = z.number().int().nonnegative();
/** A number in [0, 1]. */
export const unitInterval: z.ZodNumber = z.number().finite().min(0).max(1);
/** A fraction strictly inside (0, 1), e.g. a point of a run given relative to its length. */
export const openFraction: z.ZodNumber = z.number().finite().gt(0).lt(1);

/** A snake_case identifier: lower-case letters and digits, words joined by single underscores. */
export const snakeCase: z.ZodString = z.string().regex(
  /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/,
  "expected snake_case (e.g. mnist_dfme)",
);

/** A free-form display label for a defense or attack entry (1–64 characters, no newlines). */
export const entryLabel: z.ZodString = z.string().min(1).max(64).regex(
  /^[^\n\r]+$/,
  "expected a single-line label",
);

/**
 * Fractions of a run in (0, 1), strictly increasing: where a learning-rate schedule steps down.
 */
export const milestones: z.ZodEffects<z.ZodArray<z.ZodNumber>> = z.array(
  openFraction,
).superRefine(
  (xs, ctx) => {
    for (let i = 1; i < xs.length; i++) {
      if (xs[i] <= xs[i - 1]) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: [i],
          message: `expected strictly increasing fractions, received ${xs[i]} after ${xs[i - 1]}`,
        });
      }
    }
  },
);

/** Compute backends of the workbench (see `lib/backend`). */
export const BACKENDS = ["tensorflow", "webgpu", "wasm", "cpu"] as const;
/** A compute backend name. */
export type BackendName = (typeof BACKENDS)[number];
/** Schema of a compute backend name. */
export const BackendSchema: z.ZodEnum<["tensorflow", "webgpu", "wasm", "cpu"]> = z.enum(BACKENDS);

/** Datasets of the paper (see `lib/data`). */
export const DATASETS = [
  "mnist",
  "fashion_mnist",
  "cifar10",
  "cifar100",
  "miniimagenet",
] as const;
/** A dataset name. */
export type DatasetName = (typeof DATASETS)[number];
/** Schema of a dataset name. */
export const DatasetNameSchema: z.ZodEnum<
  ["mnist", "fashion_mnist", "cifar10", "cifar100", "miniimagenet"]
> = z.enum(DATASETS);

/** Classifier architectures usable as victim or clone (see `lib/models`). */
export const ARCHS = [
  "lenet5",
  "resnet34_8x",
  "resnet18_8x",
  "mobilenet_v2",
  "densenet121",
  "googlenet",
] as const;
/** A classifier architecture name. */
export type ArchName = (typeof ARCHS)[number];
/** Schema of a classifier architecture name. */
export const ArchSchema: z.ZodEnum<
  [
    "lenet5",
    "resnet34_8x",
    "resnet18_8x",
    "mobilenet_v2",
    "densenet121",
    "googlenet",
  ]
> = z.enum(ARCHS);

/** What a black box returns per query: the probability vector or only the arg-max class. */
export const LabelKindSchema: z.ZodEnum<["soft", "hard"]> = z.enum([
  "soft",
  "hard",
]);
/** `soft` (probabilities) or `hard` (top-1 label only). */
export type LabelKind = "soft" | "hard";
