/**
 * Schema of the `dataset` section: which dataset the victim is trained and evaluated on.
 *
 * @module
 */
import { z } from "zod";
import { DatasetNameSchema, positiveInt } from "./fields.ts";

/**
 * `dataset:` — `name` picks one of the paper's datasets; `dir` overrides the cache folder,
 * `download` allows fetching when it is missing, `image_size` resizes inputs (square, pixels),
 * `train_subset` trains on the first N training images only (smoke runs).
 */
export const DatasetSchema = z.object({
  name: DatasetNameSchema,
  dir: z.string().min(1).optional(),
  download: z.boolean().optional(),
  image_size: positiveInt.optional(),
  train_subset: positiveInt.optional(),
}).strict();

/** A validated `dataset` section. */
export type DatasetConfig = z.infer<typeof DatasetSchema>;
