/**
 * `--set path=value` overrides: one-off changes to a config from the command line or a notebook,
 * validated like the file itself.
 *
 * A path is dotted (`victim.train.lr`, `attacks.0.budget`); a value is read as YAML, so `3` is a
 * number, `true` a boolean, `median` a string, `[0, 1, 2]` a sequence and an empty value deletes
 * the key (the schema default then applies).
 *
 * @module
 */
import { parse as parseYamlValue } from "yaml";
import { ConfigError, type ConfigIssue } from "./config_error.ts";
import { formatPath, parsePath, type PathSegment } from "./config_path.ts";
import { isPlainObject } from "./deep_merge.ts";
import type { ExperimentConfig } from "./experiment_schema.ts";
import { checkExperiment } from "./validate.ts";

/** The pseudo-file name under which override errors are reported. */
export const OVERRIDE_SOURCE = "--set";

/** One parsed `path=value` override. */
export interface Override {
  /** The override as written. */
  readonly text: string;
  /** The field it sets. */
  readonly path: PathSegment[];
  /** The value, parsed as YAML; `null` deletes the key. */
  readonly value: unknown;
}

/**
 * Parse `path=value` strings. Every malformed entry is reported in one {@link ConfigError}.
 *
 * @example
 * ```ts
 * import { parseOverrides } from "./overrides.ts";
 * parseOverrides(["victim.train.epochs=3"]); // [{ text: "victim.train.epochs=3", path: ["victim", "train", "epochs"], value: 3 }]
 * ```
 */
export function parseOverrides(texts: readonly string[]): Override[] {
  const out: Override[] = [];
  const issues: ConfigIssue[] = [];
  for (const text of texts) {
    const eq = text.indexOf("=");
    const path = eq < 0 ? undefined : parsePath(text.slice(0, eq));
    if (path === undefined) {
      issues.push({
        path: text,
        message: "expected path=value, e.g. victim.train.epochs=3",
      });
      continue;
    }
    try {
      out.push({
        text,
        path,
        value: parseYamlValue(text.slice(eq + 1)) ?? null,
      });
    } catch (e) {
      const msg = (e as Error).message.split("\n")[0];
      issues.push({
        path: formatPath(path),
        message: `value is not valid YAML: ${msg}`,
      });
    }
  }
  if (issues.length > 0) throw new ConfigError(OVERRIDE_SOURCE, issues);
  return out;
}

/**
 * Apply parsed overrides, in order, to a copy of a raw (unvalidated) config. Paths that cannot be
 * reached (an index past the end of a sequence, a key inside a scalar) are returned as issues.
 */
export function setOverrides(
  raw: unknown,
  overrides: readonly Override[],
): { value: unknown; issues: ConfigIssue[] } {
  const value = structuredClone(raw);
  const issues: ConfigIssue[] = [];
  for (const o of overrides) {
    const problem = setIn(value, o.path, o.value);
    if (problem !== undefined) {
      issues.push({
        path: formatPath(o.path),
        message: `${problem} (from ${o.text})`,
      });
    }
  }
  return { value, issues };
}

/** The last override whose path is a prefix of (or equal to) `path`: the one an issue stems from. */
export function overrideOwning(
  overrides: readonly Override[],
  path: readonly PathSegment[],
): Override | undefined {
  return overrides.findLast((o) =>
    o.path.length <= path.length &&
    o.path.every((seg, i) => String(seg) === String(path[i]))
  );
}

/**
 * Apply `path=value` overrides to a validated config and validate the result again; throws a
 * {@link ConfigError} (file `--set`) listing every bad override. A default `output.dir`
 * (`results/<name>`) follows a changed `name`.
 *
 * @example
 * ```ts ignore
 * import { applyOverrides } from "./overrides.ts";
 * const faster = applyOverrides(config, ["victim.train.epochs=3", "attacks.0.budget=5000"]);
 * ```
 */
export function applyOverrides(
  config: ExperimentConfig,
  overrides: readonly string[],
): ExperimentConfig {
  const parsed = parseOverrides(overrides);
  const base: Record<string, unknown> = structuredClone(config);
  const touchesOutput = parsed.some((o) => o.path[0] === "output");
  if (!touchesOutput && config.output.dir === `results/${config.name}`) {
    base.output = {};
  }
  const { value, issues } = setOverrides(base, parsed);
  if (issues.length > 0) throw new ConfigError(OVERRIDE_SOURCE, issues);
  const r = checkExperiment(value);
  if (r.ok) return r.config;
  throw new ConfigError(
    OVERRIDE_SOURCE,
    r.issues.map((i) => {
      const owner = overrideOwning(parsed, i.path);
      return {
        path: formatPath(i.path),
        message: owner ? `${i.message} (from ${owner.text})` : i.message,
      };
    }),
  );
}

function setIn(
  root: unknown,
  path: readonly PathSegment[],
  value: unknown,
): string | undefined {
  let node: unknown = root;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    const here = formatPath(path.slice(0, i));
    if (Array.isArray(node)) {
      if (typeof seg !== "number") {
        return `${here} is a sequence; expected an index, received ${seg}`;
      }
      if (seg > node.length) {
        return `index ${seg} is past the end of ${here} (${node.length} items)`;
      }
      if (last) {
        if (value === null) {
          return `cannot delete an item of ${here}; set the whole sequence instead`;
        }
        node[seg] = value;
        return undefined;
      }
      if (node[seg] === undefined) node[seg] = {};
      node = node[seg];
    } else if (isPlainObject(node)) {
      const key = String(seg);
      if (last) {
        if (value === null) delete node[key];
        else node[key] = value;
        return undefined;
      }
      if (node[key] === undefined || node[key] === null) node[key] = {};
      node = node[key];
    } else {
      return `cannot set ${formatPath(path)}: ${here} is ${
        node === null ? "null" : typeof node
      }, not a mapping or sequence`;
    }
  }
  return undefined;
}
