import assert from "node:assert/strict";
import { ConfigError, deepMerge, parseConfig, PROFILE_ENV_VAR, resolveProfileName } from "../../lib/config/mod.ts";
import { overrideOwns } from "../../lib/config/deep_merge.ts";
import { expectConfigError, issueAt, issuePaths, minimalConfig, toYaml } from "./fixture.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

Deno.test("deepMerge: mappings merge, arrays and scalars replace, null deletes, inputs untouched", () => {
  const base = {
    a: { x: 1, y: { p: 1, q: 2 } },
    list: [1, 2, 3],
    s: "keep",
    gone: 5,
  };
  const over = {
    a: { y: { q: 9 }, z: 3 },
    list: [7],
    gone: null,
    fresh: { k: [1] },
  };
  const before = structuredClone(base);
  const overBefore = structuredClone(over);
  const merged = deepMerge(base, over);
  assert.deepEqual(merged, {
    a: { x: 1, y: { p: 1, q: 9 }, z: 3 },
    list: [7],
    s: "keep",
    fresh: { k: [1] },
  });
  assert.deepEqual(base, before);
  assert.deepEqual(over, overBefore);
  (merged as Obj).fresh.k.push(2);
  assert.deepEqual(
    over.fresh.k,
    [1],
    "merge result shares no structure with the override",
  );
  assert.deepEqual(deepMerge({ a: 1 }, { a: { b: 2 } }), { a: { b: 2 } });
  assert.deepEqual(deepMerge({ a: { b: 2 } }, { a: 3 }), { a: 3 });
});

Deno.test("overrideOwns: a path belongs to the override that spells it or replaces a value on the way", () => {
  const over = { victim: { train: { lr: 1 } }, attacks: [{ budget: 5 }] };
  assert.ok(overrideOwns(over, ["victim", "train", "lr"]));
  assert.ok(!overrideOwns(over, ["victim", "train", "epochs"]));
  assert.ok(!overrideOwns(over, ["victim", "arch"]));
  assert.ok(
    overrideOwns(over, ["attacks", 0, "clone_arch"]),
    "array replaced wholesale",
  );
  assert.ok(!overrideOwns(over, ["seeds"]));
  assert.ok(!overrideOwns({}, ["seeds"]));
});

function withProfiles(): Obj {
  const c = minimalConfig() as Obj;
  c.profiles = {
    paper: {
      attacks: [{
        type: "dfme",
        budget: 2000000,
        clone_arch: "lenet5",
        gen_width: 64,
      }],
    },
    local: { victim: { train: { epochs: 5 } } },
    smoke: {
      seeds: [7],
      victim: { width: 0.5, train: { epochs: 1, momentum: null } },
      attacks: [{ type: "maze", budget: 100, clone_arch: "lenet5" }],
      eval: { test_subset: 50 },
    },
  };
  return c;
}

Deno.test("profiles merge onto the base before validation", async () => {
  const text = toYaml(withProfiles());
  const paper = await parseConfig(text, "p.yaml", "paper");
  assert.equal(paper.profile, "paper");
  assert.equal(paper.config.victim.train.epochs, 2);
  assert.equal(paper.config.attacks[0].budget, 2000000);

  const local = await parseConfig(text, "p.yaml", "local");
  assert.equal(local.config.victim.train.epochs, 5);
  assert.equal(
    local.config.victim.train.lr,
    0.01,
    "sibling keys survive a nested override",
  );
  assert.equal(local.config.victim.train.momentum, 0.9);
  assert.equal(local.config.attacks[0].budget, 1000);

  const smoke = await parseConfig(text, "p.yaml", "smoke");
  assert.deepEqual(smoke.config.seeds, [7]);
  assert.equal(smoke.config.victim.width, 0.5);
  assert.equal(smoke.config.victim.arch, "lenet5");
  assert.equal(smoke.config.victim.train.epochs, 1);
  assert.equal(
    smoke.config.victim.train.momentum,
    undefined,
    "null in a profile deletes the key",
  );
  assert.equal(
    smoke.config.attacks.length,
    1,
    "arrays replace, not concatenate",
  );
  assert.equal(smoke.config.attacks[0].type, "maze");
  assert.equal(smoke.config.eval.test_subset, 50);
  assert.equal(smoke.config.eval.batch_size, 512);
  assert.ok(
    !("profiles" in smoke.config),
    "profiles are not part of the resolved config",
  );
  assert.notEqual(smoke.hash, local.hash);
});

Deno.test("errors from a profile are reported under profiles.<name>, only for the chosen profile", async () => {
  const c = withProfiles();
  c.profiles.smoke.victim.train.epochs = "one";
  c.profiles.smoke.victim.train.lrr = 0.1;
  c.profiles.smoke.attacks[0].budget = -1;
  c.victim.train.lr = "base-error";
  const err = await expectConfigError(c, "smoke");
  assert.deepEqual(issuePaths(err), [
    "profiles.smoke.attacks.0.budget",
    "profiles.smoke.victim.train.epochs",
    "profiles.smoke.victim.train.lrr",
    "victim.train.lr",
  ]);
  assert.ok(
    issueAt(err, "profiles.smoke.victim.train.epochs").line! >
      issueAt(err, "victim.train.lr").line!,
  );
  assert.match(err.message, /\(profile smoke\)/);
  // The local profile does not see smoke's errors.
  const local = await expectConfigError(c, "local");
  assert.deepEqual(issuePaths(local), ["victim.train.lr"]);
});

Deno.test("profiles must be exactly paper, local and smoke, each a mapping", async () => {
  const c = minimalConfig() as Obj;
  c.profiles = { paper: {}, local: [1], debug: {} };
  const err = await expectConfigError(c);
  assert.deepEqual(issuePaths(err), [
    "profiles.debug",
    "profiles.local",
    "profiles.smoke",
  ]);

  const d = minimalConfig() as Obj;
  delete d.profiles;
  assert.deepEqual(issuePaths(await expectConfigError(d)), ["profiles"]);

  const e = minimalConfig() as Obj;
  e.profiles = { paper: null, local: null, smoke: null }; // `smoke:` with nothing = no overrides
  assert.equal(
    (await parseConfig(toYaml(e), "e.yaml", "smoke")).config.name,
    "tiny_test",
  );

  const f = minimalConfig() as Obj;
  f.profiles.smoke = { profiles: { smoke: {} } };
  assert.deepEqual(issuePaths(await expectConfigError(f, "smoke")), [
    "profiles.smoke.profiles",
  ]);
});

Deno.test("profile selection: explicit, then $MECO_PROFILE, then local", async () => {
  const saved = Deno.env.get(PROFILE_ENV_VAR);
  const text = toYaml(withProfiles());
  try {
    Deno.env.delete(PROFILE_ENV_VAR);
    assert.equal(resolveProfileName(), "local");
    assert.equal((await parseConfig(text, "p.yaml")).profile, "local");
    Deno.env.set(PROFILE_ENV_VAR, "smoke");
    const viaEnv = await parseConfig(text, "p.yaml");
    assert.equal(viaEnv.profile, "smoke");
    assert.deepEqual(viaEnv.config.seeds, [7]);
    assert.equal(
      (await parseConfig(text, "p.yaml", "paper")).profile,
      "paper",
      "explicit beats env",
    );
    Deno.env.set(PROFILE_ENV_VAR, "fast");
    await assert.rejects(
      () => parseConfig(text, "p.yaml"),
      (e) =>
        e instanceof ConfigError && e.file === "$MECO_PROFILE" &&
        /received "fast"/.test(e.message),
    );
    assert.throws(() => resolveProfileName("huge"), ConfigError);
  } finally {
    if (saved === undefined) Deno.env.delete(PROFILE_ENV_VAR);
    else Deno.env.set(PROFILE_ENV_VAR, saved);
  }
});
