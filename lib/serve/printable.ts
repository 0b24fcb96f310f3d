/**
 * Printing text that came from someone else (key names) on a terminal:
 * control characters (which can move the cursor, clear the screen or recolour
 * what follows) and Unicode bidirectional controls (which can reorder what a
 * reader sees) are written as `\uXXXX` escapes instead of raw.
 *
 * @module
 */

/** C0 and C1 controls, DEL, the line and paragraph separators, and the bidirectional formatting characters. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same, less the C0 controls that JSON.stringify already escapes. */
const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const hex = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** A control character: C0, DEL, C1, or a line/paragraph separator. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
export const CONTROL_CHAR: RegExp = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
/** A Unicode bidirectional formatting character (marks, embeddings, overrides, isolates). */
export const BIDI_CHAR: RegExp = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/**
 * `s` with backslashes doubled and every unprintable character as `\uXXXX`:
 * safe to print, and distinct texts print distinctly.
 *
 * @example
 * ```ts
 * import { printable } from "./printable.ts";
 * printable("a\u001b[2Jb"); // "a\\u001b[2Jb"
 * ```
 */
export function printable(s: string): string {
  return s.replaceAll("\\", "\\\\").replace(UNPRINTABLE, hex);
}

/** `JSON.stringify(value)`, with the unprintable characters JSON leaves raw escaped too (still the same JSON value). */
export function safeJson(value: unknown): string {
  return JSON.stringify(value).replace(JSON_UNSAFE, hex);
}
