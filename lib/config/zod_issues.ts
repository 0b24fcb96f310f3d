/**
 * Turn zod's issues into path-precise, human messages: `expected number, received string`,
 * one issue per unknown key (with a "did you mean" hint), unions explained by their branches.
 *
 * @module
 */
import { z } from "zod";
import type { PathSegment } from "./config_path.ts";
import { isPlainObject } from "./deep_merge.ts";

/** An issue before it is attributed to a file and line: path segments and a message. */
export interface RawIssue {
  /** Where, as segments into the validated value. */
  readonly path: PathSegment[];
  /** What was expected and what was found. */
  readonly message: string;
}

/**
 * Explain every issue of a failed parse of `data` against `schema`. Unknown keys become one issue
 * each, at the key's own path.
 */
export function explainZodIssues(
  error: z.ZodError,
  schema: z.ZodTypeAny,
  data: unknown,
): RawIssue[] {
  return error.issues.flatMap((i) => explain(i, schema, data));
}

function explain(
  issue: z.ZodIssue,
  schema: z.ZodTypeAny,
  data: unknown,
): RawIssue[] {
  const value = valueAt(data, issue.path);
  if (issue.code === z.ZodIssueCode.unrecognized_keys) {
    const allowed = keysAt(schema, issue.path, data);
    return issue.keys.map((k) => ({
      path: [...issue.path, k],
      message: unknownKey(k, allowed),
    }));
  }
  if (issue.code === z.ZodIssueCode.invalid_union) {
    const exps = issue.unionErrors.map((e) => {
      const here = e.issues.filter((i) => samePath(i.path, issue.path));
      return here.length === 1 && here.length === e.issues.length ? expectation(here[0]) : undefined;
    });
    if (exps.every((x) => x !== undefined)) {
      return [{
        path: issue.path,
        message: `expected ${exps.join(" or ")}, received ${show(value)}`,
      }];
    }
    const fewest = issue.unionErrors.reduce((
      a,
      b,
    ) => (b.issues.length < a.issues.length ? b : a));
    return explainZodIssues(fewest, schema, data);
  }
  if (issue.code === z.ZodIssueCode.invalid_type) {
    const message = issue.received === "undefined"
      ? `missing required field (expected ${issue.expected})`
      : `expected ${issue.expected}, received ${issue.received}`;
    return [{ path: issue.path, message }];
  }
  if (issue.code === z.ZodIssueCode.custom) {
    return [{ path: issue.path, message: issue.message }];
  }
  const exp = expectation(issue);
  return [{
    path: issue.path,
    message: exp === undefined ? issue.message : `expected ${exp}, received ${show(value)}`,
  }];
}

/** What an issue expected, as a phrase (`number > 0`, `"median"`, `one of "sgd", "adam"`). */
function expectation(issue: z.ZodIssue): string | undefined {
  switch (issue.code) {
    case z.ZodIssueCode.invalid_type:
      return issue.expected;
    case z.ZodIssueCode.invalid_literal:
      return JSON.stringify(issue.expected);
    case z.ZodIssueCode.invalid_enum_value:
    case z.ZodIssueCode.invalid_union_discriminator:
      return `one of ${issue.options.map((o) => JSON.stringify(o)).join(", ")}`;
    case z.ZodIssueCode.too_small:
    case z.ZodIssueCode.too_big: {
      const small = issue.code === z.ZodIssueCode.too_small;
      const bound = Number(small ? issue.minimum : issue.maximum);
      if (issue.type === "number" || issue.type === "bigint") {
        const op = issue.exact ? "=" : small ? (issue.inclusive ? ">=" : ">") : (issue.inclusive ? "<=" : "<");
        return `number ${op} ${bound}`;
      }
      const unit = issue.type === "array" ? "item" : issue.type === "string" ? "character" : "element";
      const n = issue.inclusive ? bound : small ? bound + 1 : bound - 1;
      const q = issue.exact ? "exactly" : small ? "at least" : "at most";
      return `${q} ${n} ${unit}${n === 1 ? "" : "s"}`;
    }
    case z.ZodIssueCode.not_multiple_of:
      return `a multiple of ${issue.multipleOf}`;
    case z.ZodIssueCode.not_finite:
      return "a finite number";
    case z.ZodIssueCode.invalid_string:
      return issue.message.replace(/^expected /, "");
    default:
      return undefined;
  }
}

function unknownKey(key: string, allowed: string[] | undefined): string {
  if (allowed === undefined || allowed.length === 0) return "unknown key";
  const near = allowed
    .map((k) => ({ k, d: editDistance(key, k) }))
    .filter(({ k, d }) => d <= Math.max(1, Math.floor(Math.max(k.length, key.length) / 3)))
    .sort((a, b) => a.d - b.d);
  if (near.length > 0) {
    return `unknown key (did you mean ${JSON.stringify(near[0].k)}?)`;
  }
  return `unknown key (allowed: ${allowed.join(", ")})`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        prev[j] + 1,
        row[j - 1] + 1,
        prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length];
}

/** The allowed keys of the object schema at `path`, following defaults, effects and unions. */
function keysAt(
  schema: z.ZodTypeAny,
  path: readonly PathSegment[],
  data: unknown,
): string[] | undefined {
  let s: z.ZodTypeAny | undefined = schema;
  let d: unknown = data;
  for (let i = 0; i <= path.length; i++) {
    s = pick(unwrap(s), d);
    if (s === undefined) return undefined;
    if (i === path.length) break;
    const seg = path[i];
    if (s instanceof z.ZodObject) {
      s = (s.shape as Record<string, z.ZodTypeAny>)[String(seg)];
    } else if (s instanceof z.ZodArray) s = s.element;
    else if (s instanceof z.ZodRecord) s = s.valueSchema;
    else return undefined;
    d = valueAt(d, [seg]);
  }
  return s instanceof z.ZodObject ? Object.keys(s.shape) : undefined;
}

function unwrap(s: z.ZodTypeAny | undefined): z.ZodTypeAny | undefined {
  while (s !== undefined) {
    if (s instanceof z.ZodEffects) s = s.innerType();
    else if (s instanceof z.ZodDefault) s = s.removeDefault();
    else if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) {
      s = s.unwrap();
    } else return s;
  }
  return s;
}

function pick(
  s: z.ZodTypeAny | undefined,
  d: unknown,
): z.ZodTypeAny | undefined {
  if (!(s instanceof z.ZodDiscriminatedUnion)) return s;
  const tag = isPlainObject(d) ? d[s.discriminator] : undefined;
  return unwrap(s.optionsMap.get(tag as z.Primitive));
}

function valueAt(data: unknown, path: readonly PathSegment[]): unknown {
  let d = data;
  for (const seg of path) {
    if (Array.isArray(d) && typeof seg === "number") d = d[seg];
    else if (isPlainObject(d)) d = d[String(seg)];
    else return undefined;
  }
  return d;
}

function samePath(
  a: readonly PathSegment[],
  b: readonly PathSegment[],
): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A short rendering of a found value for messages. */
function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "string") {
    return JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v);
  }
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (isPlainObject(v)) return "an object";
  return String(v);
}
