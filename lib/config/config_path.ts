/**
 * Dotted field paths, the one spelling shared by error messages and `--set` overrides.
 *
 * A path is a list of segments: strings for mapping keys, numbers for sequence indices.
 * Written out it is the segments joined by dots, e.g. `attacks.0.budget`.
 *
 * @module
 */

/** One step into a config: a mapping key or a sequence index. */
export type PathSegment = string | number;

/**
 * Write a path the way errors and overrides spell it; the root is `(root)`.
 *
 * @example
 * ```ts
 * import { formatPath } from "./config_path.ts";
 * formatPath(["attacks", 0, "budget"]); // "attacks.0.budget"
 * ```
 */
export function formatPath(path: readonly PathSegment[]): string {
  return path.length === 0 ? "(root)" : path.map(String).join(".");
}

/**
 * Split a dotted path into segments; all-digit segments become sequence indices.
 * Returns `undefined` when a segment is empty (e.g. `a..b` or a trailing dot).
 *
 * @example
 * ```ts
 * import { parsePath } from "./config_path.ts";
 * parsePath("attacks.0.budget"); // ["attacks", 0, "budget"]
 * ```
 */
export function parsePath(text: string): PathSegment[] | undefined {
  const parts = text.trim().split(".");
  if (parts.some((p) => p.length === 0)) return undefined;
  return parts.map((p) => (/^(0|[1-9][0-9]*)$/.test(p) ? Number(p) : p));
}
