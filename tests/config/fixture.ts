/**
 * Test fixtures for `lib/config`, generated in code: a minimal valid config and helpers to render
 * variants of it as YAML and to catch the {@link ConfigError} a bad one throws.
 *
 * @module
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { ConfigError, type ConfigIssue, parseConfig, type ProfileName } from "../../lib/config/mod.ts";

/** A minimal valid config file as a plain object (fresh copy per call). */
export function minimalConfig(): Record<string, unknown> {
  return {
    name: "tiny_test",
    description: "fixture",
    seeds: [0],
    dataset: { name: "mnist" },
    victim: {
      arch: "lenet5",
      train: {
        epochs: 2,
        batch_size: 32,
        optimizer: "sgd",
        lr: 0.01,
        momentum: 0.9,
      },
    },
    defenses: [{ type: "none" }],
    attacks: [{ type: "dfme", budget: 1000, clone_arch: "lenet5" }],
    profiles: { paper: {}, local: {}, smoke: {} },
  };
}

/** Render a config object as YAML text. */
export function toYaml(config: unknown): string {
  return stringify(config);
}

/** Parse a config object (rendered as YAML) and expect it to fail; returns the error. */
export async function expectConfigError(
  config: unknown,
  profile: ProfileName = "local",
  name = "fixture.yaml",
): Promise<ConfigError> {
  const text = typeof config === "string" ? config : toYaml(config);
  try {
    await parseConfig(text, name, profile);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.file, name);
    return e;
  }
  assert.fail("expected a ConfigError, but the config was accepted");
}

/** The issue paths of an error, sorted. */
export function issuePaths(err: ConfigError): string[] {
  return err.issues.map((i: ConfigIssue) => i.path).sort();
}

/** The single issue at `path`; fails when there is none. */
export function issueAt(err: ConfigError, path: string): ConfigIssue {
  const found = err.issues.find((i) => i.path === path);
  assert.ok(found, `no issue at ${path}; issues: ${err.message}`);
  return found;
}
