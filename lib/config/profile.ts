/**
 * Profiles: every config file carries `profiles: { paper, local, smoke }`, partial overrides of the
 * base config, one of which is merged in before validation.
 *
 * - `paper`: the paper's budgets;
 * - `local`: what two CPU cores finish within an hour (the default);
 * - `smoke`: seconds, used by CI to execute every notebook.
 *
 * @module
 */
import { z } from "zod";
import { ConfigError } from "./config_error.ts";

/** The profile names, in decreasing cost. */
export const PROFILES = ["paper", "local", "smoke"] as const;
/** A profile name. */
export type ProfileName = (typeof PROFILES)[number];
/** Schema of a profile name. */
export const ProfileNameSchema: z.ZodEnum<["paper", "local", "smoke"]> = z.enum(
  PROFILES,
);
/** The profile used when neither the caller nor `MECO_PROFILE` names one. */
export const DEFAULT_PROFILE: ProfileName = "local";
/** The environment variable that selects the profile when the caller passes none. */
export const PROFILE_ENV_VAR = "MECO_PROFILE";

const overrides = z.record(z.unknown()).nullable().transform((o) => o ?? {});

/**
 * `profiles:` in a config file: exactly the three profiles, each a (possibly empty) mapping of
 * partial overrides; an empty value (`smoke:`) means no overrides.
 */
export const ProfilesSchema = z.object({
  paper: overrides,
  local: overrides,
  smoke: overrides,
}).strict();

/** Validated `profiles:` overrides, one mapping per profile. */
export type ProfileOverrides = z.infer<typeof ProfilesSchema>;

/** Whether a string is a profile name. */
export function isProfileName(x: unknown): x is ProfileName {
  return typeof x === "string" && (PROFILES as readonly string[]).includes(x);
}

/**
 * Pick the profile: the explicit one if given, else `$MECO_PROFILE` if set (and readable),
 * else `local`. An unknown name throws a {@link ConfigError} naming where it came from.
 *
 * @example
 * ```ts
 * import { resolveProfileName } from "./profile.ts";
 * resolveProfileName("smoke"); // "smoke"
 * ```
 */
export function resolveProfileName(explicit?: string): ProfileName {
  const [value, origin] = explicit !== undefined
    ? [explicit, "profile argument"]
    : [readEnv(PROFILE_ENV_VAR), `$${PROFILE_ENV_VAR}`];
  if (value === undefined || value === "") return DEFAULT_PROFILE;
  if (isProfileName(value)) return value;
  throw new ConfigError(origin, [{
    path: "(profile)",
    message: `expected one of ${PROFILES.join(", ")}, received ${JSON.stringify(value)}`,
  }]);
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: behave as if unset
  }
}
