/**
 * Canonical JSON: the one serialisation of a config that its hash is taken over.
 *
 * @module
 */

/**
 * Serialise a JSON-compatible value with object keys sorted (recursively) and no whitespace, so
 * that equal values give equal strings whatever their key order. `undefined` object members are
 * dropped, as in `JSON.stringify`; non-finite numbers, `undefined` array items, functions, symbols
 * and bigints throw a `TypeError`.
 *
 * @example
 * ```ts
 * import { canonicalJson } from "./canonical_json.ts";
 * canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] }); // '{"a":[2,{"c":4,"d":3}],"b":1}'
 * ```
 */
export function canonicalJson(value: unknown): string {
  return write(value, "(root)");
}

function write(v: unknown, at: string): string {
  if (v === null || typeof v === "boolean" || typeof v === "string") {
    return JSON.stringify(v);
  }
  if (typeof v === "number") {
    if (!Number.isFinite(v)) {
      throw new TypeError(`canonicalJson: non-finite number at ${at}`);
    }
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) {
    return `[${
      v.map((x, i) => {
        if (x === undefined) {
          throw new TypeError(`canonicalJson: undefined at ${at}.${i}`);
        }
        return write(x, `${at}.${i}`);
      }).join(",")
    }]`;
  }
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${
      keys.map((k) => `${JSON.stringify(k)}:${write(o[k], `${at}.${k}`)}`).join(
        ",",
      )
    }}`;
  }
  throw new TypeError(`canonicalJson: unsupported ${typeof v} at ${at}`);
}
