/**
 * The identity of a resolved config: the key the runner caches results under.
 *
 * @module
 */
import { canonicalJson } from "./canonical_json.ts";

/**
 * SHA-256 (lower-case hex) of the {@link canonicalJson} of a value: stable under key order,
 * changed by any value. Hash the resolved, validated config (defaults filled in), not the file.
 *
 * @example
 * ```ts
 * import { configHash } from "./config_hash.ts";
 * (await configHash({ a: 1, b: 2 })) === (await configHash({ b: 2, a: 1 })); // true
 * ```
 */
export async function configHash(config: unknown): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson(config));
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}
