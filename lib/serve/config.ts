/**
 * The serving config (`configs/serve.yaml`): which exported model bundle to
 * serve, behind which defense, where the key store lives, and the request
 * limits. Validated by a strict zod schema; every fault is reported in one
 * {@linkcode ConfigError} naming the file, the field and its line.
 *
 * @module
 */
import { z } from "zod";
import { ConfigError, type ConfigIssue } from "../config/config_error.ts";
import { formatPath } from "../config/config_path.ts";
import { ServeDefenseSchema } from "../config/defense_schema.ts";
import { BackendSchema, nonNegativeInt, positiveInt } from "../config/fields.ts";
import { parseYaml } from "../config/yaml_source.ts";
import { explainZodIssues } from "../config/zod_issues.ts";

/** `limits:` — what one request may carry. */
export const LimitsSchema = z.object({
  /** Largest request body accepted, in bytes (413 beyond it). */
  max_body_bytes: positiveInt.default(8 * 1024 * 1024),
  /** Most images in one request (413 beyond it). */
  max_batch: positiveInt.default(256),
}).strict();

/** The whole serving config. */
export const ServeConfigSchema = z.object({
  /** The model bundle directory written by `deno task export-model`. */
  bundle: z.string().min(1),
  /**
   * The defense wrapped around the bundle's victim: any entry of an experiment config's
   * `defenses:` (lib/config/defense_schema.ts), with `meco`'s trained nets and settings taken
   * from the bundle.
   */
  defense: ServeDefenseSchema,
  /** The SQLite key and usage store (created when absent); several servers may share it. */
  store: z.string().min(1),
  /** Interface to listen on (default loopback). */
  host: z.string().min(1).default("127.0.0.1"),
  /** TCP port; 0 picks a free one (printed at start). */
  port: z.number().int().min(0).max(65535).default(8080),
  /** tfjs backend (default: auto, or $MECO_BACKEND). */
  backend: BackendSchema.optional(),
  /**
   * Seed of the defense's randomness (MeCo's ε, RandP's noise). Leave unset in
   * production: each process then draws a fresh random seed, so no two server
   * processes (or restarts) replay the same noise.
   */
  seed: nonNegativeInt.optional(),
  limits: LimitsSchema.default({}),
}).strict();

/** A validated serving config. */
export type ServeConfig = z.infer<typeof ServeConfigSchema>;

/**
 * Parses serving-config YAML text; relative `bundle` and `store` paths are
 * kept as written (relative to the working directory).
 *
 * @throws {ConfigError} naming every faulty field of `file`
 */
export function parseServeConfig(text: string, file: string, overrides: Partial<ServeConfig> = {}): ServeConfig {
  return parseWithSchema(ServeConfigSchema, text, file, overrides);
}

/** Reads and validates a serving config file (see {@linkcode parseServeConfig}). */
export async function loadServeConfig(path: string, overrides: Partial<ServeConfig> = {}): Promise<ServeConfig> {
  return parseServeConfig(await readConfigText(path), path, overrides);
}

/**
 * Parses YAML `text` (a mapping; `overrides` replace its top-level keys) and
 * validates it against `schema`.
 *
 * @throws {ConfigError} naming every faulty field of `file` with its line
 */
export function parseWithSchema<S extends z.ZodTypeAny>(
  schema: S,
  text: string,
  file: string,
  overrides: Record<string, unknown> = {},
): z.infer<S> {
  const src = parseYaml(text, file);
  const root = src.value;
  if (root === null || typeof root !== "object" || Array.isArray(root)) {
    throw new ConfigError(file, [{ path: "(root)", message: "expected a mapping at the top level" }]);
  }
  const merged = { ...root, ...overrides };
  const r = schema.safeParse(merged);
  if (r.success) return r.data;
  const issues: ConfigIssue[] = explainZodIssues(r.error, schema, merged).map((i) => ({
    path: formatPath(i.path),
    message: i.message,
    ...src.locate(i.path),
  }));
  throw new ConfigError(file, issues);
}

/** The text of a config file; a missing file is a {@linkcode ConfigError}. */
export async function readConfigText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new ConfigError(path, [{ path: "(file)", message: "file not found" }]);
    throw e;
  }
}
