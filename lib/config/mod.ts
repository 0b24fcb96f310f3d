/**
 * Experiment configs: YAML files in `configs/`, validated by strict zod schemas.
 *
 * A config file holds a base experiment plus `profiles: { paper, local, smoke }` of partial
 * overrides. {@link loadConfig} deep-merges the chosen profile onto the base (mappings merge,
 * arrays replace, `null` deletes), applies optional `--set` overrides, validates the result, and
 * returns it with a stable SHA-256 `hash` of its canonical JSON, the key results are cached under.
 *
 * Unknown keys are rejected everywhere. Every bad field is reported at once, in a
 * {@link ConfigError} whose message reads, one line per issue:
 *
 * ```text
 * configs/mnist_dfme.yaml: victim.train.lr: expected number, received string (line 14, column 5)
 * ```
 *
 * @example
 * ```ts ignore
 * import { applyOverrides, loadConfig } from "./mod.ts";
 *
 * const { config, hash, profile } = await loadConfig("configs/mnist_dfme.yaml", "smoke");
 * console.log(profile, hash.slice(0, 12), config.victim.arch, config.attacks[0].budget);
 * const quicker = applyOverrides(config, ["victim.train.epochs=1"]);
 * ```
 *
 * @module
 */
export * from "./attack_schema.ts";
export * from "./canonical_json.ts";
export * from "./config_error.ts";
export * from "./config_hash.ts";
export * from "./config_path.ts";
export * from "./dataset_schema.ts";
export { deepMerge } from "./deep_merge.ts";
export * from "./defense_schema.ts";
export * from "./experiment_schema.ts";
export {
  type ArchName,
  ARCHS,
  ArchSchema,
  type BackendName,
  BACKENDS,
  BackendSchema,
  DatasetNameSchema,
  type LabelKind,
  LabelKindSchema,
} from "./fields.ts";
export * from "./load.ts";
export { applyOverrides, type Override, OVERRIDE_SOURCE, parseOverrides } from "./overrides.ts";
export * from "./profile.ts";
export * from "./validate.ts";
export * from "./victim_schema.ts";
export { type RawIssue } from "./zod_issues.ts";
