/**
 * Layering of partial overrides onto a base config (profiles, `--set`).
 *
 * @module
 */
import type { PathSegment } from "./config_path.ts";

/** A plain (non-array, non-null) object. */
export function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/**
 * Merge `override` onto `base` without mutating either: mappings merge key by key, recursively;
 * arrays and scalars replace; a `null` in the override deletes the key, so the schema default
 * (or a missing-field error) applies.
 *
 * @example
 * ```ts
 * import { deepMerge } from "./deep_merge.ts";
 * deepMerge({ a: { x: 1, y: 2 }, s: [1, 2] }, { a: { y: 3 }, s: [9] }); // { a: { x: 1, y: 3 }, s: [9] }
 * ```
 */
export function deepMerge(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return clone(override);
  const out: Record<string, unknown> = clone(base) as Record<string, unknown>;
  for (const [k, v] of Object.entries(override)) {
    if (v === null) delete out[k];
    else out[k] = k in out ? deepMerge(out[k], v) : clone(v);
  }
  return out;
}

/**
 * Whether an issue at `path` of a merged config comes from `override`: true when the override
 * spells out the whole path, or replaces a value (array or scalar) on the way to it.
 */
export function overrideOwns(
  override: unknown,
  path: readonly PathSegment[],
): boolean {
  let node: unknown = override;
  for (let i = 0; i < path.length; i++) {
    if (!isPlainObject(node)) return i > 0;
    const key = String(path[i]);
    if (!(key in node)) return false;
    node = node[key];
  }
  return true;
}

function clone<T>(x: T): T {
  return x === undefined ? x : structuredClone(x);
}
