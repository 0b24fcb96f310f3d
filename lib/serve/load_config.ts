/**
 * The load-test config (`configs/serve_load.yaml`): which bundle (exported
 * from which experiment config), which defenses, and the bounded load.
 *
 * @module
 */
import { z } from "zod";
import { ServeDefenseSchema } from "../config/defense_schema.ts";
import { positiveInt, snakeCase } from "../config/fields.ts";
import { ProfileNameSchema } from "../config/profile.ts";
import { LimitsSchema, parseWithSchema, readConfigText } from "./config.ts";

/** The whole load-test config. */
export const LoadConfigSchema = z.object({
  name: snakeCase,
  description: z.string(),
  /** The bundle served: exported from `experiment` (profile, seed) into `out` when absent or stale. */
  bundle: z.object({
    experiment: z.string().min(1),
    profile: ProfileNameSchema,
    seed: z.number().int().nonnegative().default(0),
    out: z.string().min(1),
  }).strict(),
  /** Each defense is served by its own server process in turn; labels must differ. */
  defenses: z.array(ServeDefenseSchema).min(1),
  /**
   * The measured load: `clients` concurrent clients, each sending `requests` requests of `batch`
   * images, per round and defense.
   */
  load: z.object({
    clients: positiveInt,
    requests: positiveInt,
    batch: positiveInt,
    encoding: z.enum(["json", "base64"]).default("json"),
    /** Measured rounds; each round runs the load against every defense in turn (order alternating). */
    rounds: positiveInt.default(1),
    /** Untimed requests per client first (JIT, caches). */
    warmup: z.number().int().nonnegative().default(1),
  }).strict(),
  /** The budget check: `clients` concurrent clients drain a key of `budget` images with batches of 1…max_batch. */
  drain: z.object({
    clients: positiveInt,
    budget: positiveInt,
    max_batch: positiveInt,
  }).strict(),
  limits: LimitsSchema.default({}),
}).strict().superRefine((c, ctx) => {
  const seen = new Map<string, number>();
  c.defenses.forEach((d, i) => {
    const label = d.name ?? d.type;
    const j = seen.get(label);
    if (j !== undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["defenses", i, "name"],
        message: `duplicate label ${JSON.stringify(label)} (also defenses.${j})`,
      });
    } else seen.set(label, i);
  });
  if (c.load.batch > c.limits.max_batch) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ["load", "batch"],
      message: `expected at most limits.max_batch (${c.limits.max_batch}), received ${c.load.batch}`,
    });
  }
});

/** A validated load-test config. */
export type LoadConfig = z.infer<typeof LoadConfigSchema>;

/** Reads and validates a load-test config file. @throws {ConfigError} naming every faulty field */
export async function loadLoadConfig(path: string): Promise<LoadConfig> {
  return parseWithSchema(LoadConfigSchema, await readConfigText(path), path);
}
