import assert from "node:assert/strict";
import {
  applyOverrides,
  ConfigError,
  type ExperimentConfig,
  parseConfig,
  parseOverrides,
} from "../../lib/config/mod.ts";
import { minimalConfig, toYaml } from "./fixture.ts";

async function base(): Promise<ExperimentConfig> {
  return (await parseConfig(toYaml(minimalConfig()), "fixture.yaml", "local"))
    .config;
}

function catchConfigError(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("parseOverrides reads values as YAML scalars", () => {
  const o = parseOverrides([
    "victim.train.epochs=3",
    "dataset.download=true",
    "defenses.0.type=none",
    "seeds=[1, 2]",
    "attacks.0.eps=1e-4",
    "description=a=b",
    "victim.train.momentum=",
  ]);
  assert.deepEqual(o.map((x) => x.value), [
    3,
    true,
    "none",
    [1, 2],
    1e-4,
    "a=b",
    null,
  ]);
  assert.deepEqual(o[0].path, ["victim", "train", "epochs"]);
  assert.deepEqual(parseOverrides(["attacks.0.budget=5"])[0].path, [
    "attacks",
    0,
    "budget",
  ]);
});

Deno.test("applyOverrides sets values, validates again, and leaves the input alone", async () => {
  const c = await base();
  const before = structuredClone(c);
  const o = applyOverrides(c, [
    "victim.train.epochs=3",
    "attacks.0.budget=5000",
    "attacks.0.lr_decay_at=[0.2, 0.6]",
    "victim.train.momentum=", // delete: optional again
    "eval.test_subset=100",
    "backend=cpu",
  ]);
  assert.equal(o.victim.train.epochs, 3);
  assert.equal(o.attacks[0].budget, 5000);
  assert.ok(o.attacks[0].type === "dfme");
  assert.deepEqual(o.attacks[0].lr_decay_at, [0.2, 0.6]);
  assert.equal(o.victim.train.momentum, undefined);
  assert.equal(o.eval.test_subset, 100);
  assert.equal(o.backend, "cpu");
  assert.deepEqual(c, before);
});

Deno.test("applyOverrides appends to a sequence and the default output dir follows the name", async () => {
  const c = await base();
  const o = applyOverrides(c, [
    "defenses.1={type: randp, eps: 0.1}",
    "name=renamed",
  ]);
  assert.deepEqual(o.defenses.map((d) => d.type), ["none", "randp"]);
  assert.equal(o.output.dir, "results/renamed");
  const kept = applyOverrides(c, ["output.dir=/tmp/x", "name=renamed"]);
  assert.equal(kept.output.dir, "/tmp/x");
});

Deno.test("every bad override is reported with its path", async () => {
  const c = await base();
  const err = catchConfigError(() =>
    applyOverrides(c, [
      "victim.train.epochs=three",
      "victim.train.lrr=0.1",
      "attacks.0.budget=-1",
      "dataset.name=svhn",
    ])
  );
  assert.equal(err.file, "--set");
  assert.deepEqual(err.issues.map((i) => i.path).sort(), [
    "attacks.0.budget",
    "dataset.name",
    "victim.train.epochs",
    "victim.train.lrr",
  ]);
  assert.match(
    err.message,
    /--set: victim\.train\.epochs: expected number, received string \(from victim\.train\.epochs=three\)/,
  );
  assert.match(
    err.message,
    /victim\.train\.lrr: unknown key \(did you mean "lr"\?\)/,
  );
});

Deno.test("malformed and unreachable overrides are rejected", async () => {
  const c = await base();
  let err = catchConfigError(() => applyOverrides(c, ["victim.train.epochs", "a..b=1", "=3", "seeds=[1,"]));
  assert.equal(err.issues.length, 4);
  err = catchConfigError(() =>
    applyOverrides(c, [
      "attacks.5.budget=1",
      "seeds.x=1",
      "name.first=a",
      "seeds.0=",
    ])
  );
  assert.deepEqual(err.issues.map((i) => i.path), [
    "attacks.5.budget",
    "seeds.x",
    "name.first",
    "seeds.0",
  ]);
  assert.match(err.issues[0].message, /past the end/);
});

Deno.test("loadConfig-style overrides apply after the profile and are attributed to --set", async () => {
  const text = toYaml(minimalConfig());
  const plain = await parseConfig(text, "f.yaml", "smoke");
  const set = await parseConfig(text, "f.yaml", "smoke", {
    overrides: ["victim.train.epochs=1"],
  });
  assert.equal(set.config.victim.train.epochs, 1);
  assert.notEqual(set.hash, plain.hash);
  await assert.rejects(
    () =>
      parseConfig(text, "f.yaml", "smoke", {
        overrides: ["attacks.0.budget=0"],
      }),
    (e) =>
      e instanceof ConfigError && e.file === "f.yaml" &&
      e.issues.length === 1 &&
      e.issues[0].path === "attacks.0.budget" &&
      /from --set attacks\.0\.budget=0/.test(e.issues[0].message),
  );
});
