/**
 * Validation of a resolved experiment config, collecting every issue with its path.
 *
 * @module
 */
import { ConfigError } from "./config_error.ts";
import { formatPath } from "./config_path.ts";
import { type ExperimentConfig, ExperimentSchema } from "./experiment_schema.ts";
import { explainZodIssues, type RawIssue } from "./zod_issues.ts";

/** The outcome of {@link checkExperiment}: the config, or every issue found. */
export type CheckResult =
  | { readonly ok: true; readonly config: ExperimentConfig }
  | { readonly ok: false; readonly issues: RawIssue[] };

/** Validate a resolved (profile-merged) config without throwing; issues carry path segments. */
export function checkExperiment(raw: unknown): CheckResult {
  const r = ExperimentSchema.safeParse(raw);
  return r.success
    ? { ok: true, config: r.data }
    : { ok: false, issues: explainZodIssues(r.error, ExperimentSchema, raw) };
}

/**
 * Validate a resolved config built in code (a notebook, a test); throws a {@link ConfigError}
 * under the name `source` listing every bad field.
 *
 * @example
 * ```ts ignore
 * import { validateConfig } from "./validate.ts";
 * const config = validateConfig({ name: "demo", description: "", seeds: [0], ...rest }, "notebook");
 * ```
 */
export function validateConfig(
  raw: unknown,
  source = "<config>",
): ExperimentConfig {
  const r = checkExperiment(raw);
  if (r.ok) return r.config;
  throw new ConfigError(
    source,
    r.issues.map((i) => ({ path: formatPath(i.path), message: i.message })),
  );
}
