/**
 * Loading a config file: YAML → profile merge → `--set` overrides → validation → hash.
 *
 * @module
 */
import { ConfigError, type ConfigIssue } from "./config_error.ts";
import { configHash } from "./config_hash.ts";
import { formatPath, type PathSegment } from "./config_path.ts";
import { deepMerge, isPlainObject, overrideOwns } from "./deep_merge.ts";
import type { ExperimentConfig } from "./experiment_schema.ts";
import { overrideOwning, parseOverrides, setOverrides } from "./overrides.ts";
import { type ProfileName, ProfilesSchema, resolveProfileName } from "./profile.ts";
import { checkExperiment } from "./validate.ts";
import { parseYaml, type YamlSource } from "./yaml_source.ts";
import { explainZodIssues } from "./zod_issues.ts";

/** A config ready to run: resolved for one profile, validated, and identified by its hash. */
export interface LoadedConfig {
  /** The resolved, validated config (defaults filled in). */
  readonly config: ExperimentConfig;
  /** The profile that was merged in. */
  readonly profile: ProfileName;
  /** SHA-256 hex of the canonical JSON of `config`; equal configs hash equally. */
  readonly hash: string;
  /** Where the config came from: the file path, or the name given to {@link parseConfig}. */
  readonly source: string;
}

/** Extra knobs for {@link loadConfig} and {@link parseConfig}. */
export interface LoadConfigOptions {
  /** `path=value` overrides applied after the profile (see `applyOverrides`). */
  readonly overrides?: readonly string[];
}

/**
 * Read, resolve and validate a YAML config file. The profile is `profile`, else `$MECO_PROFILE`,
 * else `local`. Every problem (syntax, unknown keys, types, ranges, in the base or in the profile's
 * overrides) is reported in one {@link ConfigError} naming the file, the field path and the line.
 * Needs `--allow-read`, and `--allow-env` (the yaml package reads LOG_TOKENS/LOG_STREAM).
 *
 * @example
 * ```ts ignore
 * import { loadConfig } from "./load.ts";
 * const { config, hash, profile } = await loadConfig("configs/mnist_dfme.yaml", "smoke");
 * ```
 */
export async function loadConfig(
  path: string | URL,
  profile?: ProfileName,
  options: LoadConfigOptions = {},
): Promise<LoadedConfig> {
  const file = path instanceof URL ? decodeURIComponent(path.pathname) : path;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ConfigError(file, [{
        path: "(file)",
        message: "file not found",
      }]);
    }
    throw e;
  }
  return parseConfig(text, file, profile, options);
}

/**
 * Resolve and validate YAML config text (from a notebook or a test) as {@link loadConfig} does for
 * a file; `name` is what errors and `source` report.
 *
 * @example
 * ```ts ignore
 * import { parseConfig } from "./load.ts";
 * const loaded = await parseConfig(await Deno.readTextFile("configs/mnist_dfme.yaml"), "inline", "smoke");
 * ```
 */
export async function parseConfig(
  text: string,
  name: string,
  profile?: ProfileName,
  options: LoadConfigOptions = {},
): Promise<LoadedConfig> {
  const chosen = resolveProfileName(profile);
  const config = resolveSource(
    parseYaml(text, name),
    chosen,
    options.overrides ?? [],
  );
  // Where cells run (the scheduler section) does not change what they compute: it is not hashed.
  const { scheduler: _scheduler, ...determining } = config;
  return {
    config,
    profile: chosen,
    hash: await configHash(determining),
    source: name,
  };
}

function resolveSource(
  src: YamlSource,
  profile: ProfileName,
  sets: readonly string[],
): ExperimentConfig {
  const issues: ConfigIssue[] = [];
  const report = (path: readonly PathSegment[], message: string) =>
    issues.push({ path: formatPath(path), message, ...src.locate(path) });

  const root = src.value;
  if (!isPlainObject(root)) {
    const found = root === null || root === undefined
      ? "an empty document"
      : Array.isArray(root)
      ? "a sequence"
      : typeof root;
    throw new ConfigError(src.file, [{
      path: "(root)",
      message: `expected a mapping at the top level, received ${found}`,
    }]);
  }
  const { profiles, ...base } = root;
  let override: Record<string, unknown> = {};
  if (profiles === undefined) {
    report(
      ["profiles"],
      "missing required field (expected a mapping with paper, local and smoke overrides)",
    );
  } else {
    const p = ProfilesSchema.safeParse(profiles);
    if (p.success) override = p.data[profile];
    else {
      for (const i of explainZodIssues(p.error, ProfilesSchema, profiles)) {
        report(["profiles", ...i.path], i.message);
      }
    }
  }

  const parsedSets = parseOverrides(sets);
  const merged = setOverrides(deepMerge(base, override), parsedSets);
  issues.push(...merged.issues);

  const r = checkExperiment(merged.value);
  if (!r.ok) {
    for (const i of r.issues) {
      const owner = overrideOwning(parsedSets, i.path);
      if (owner) {
        issues.push({
          path: formatPath(i.path),
          message: `${i.message} (from --set ${owner.text})`,
        });
      } else if (overrideOwns(override, i.path)) {
        report(["profiles", profile, ...i.path], i.message);
      } else report(i.path, i.message);
    }
  }
  if (issues.length > 0 || !r.ok) {
    throw new ConfigError(src.file, issues, `profile ${profile}`);
  }
  return r.config;
}
