import assert from "node:assert/strict";
import {
  AttackSchema,
  ConfigError,
  DefenseSchema,
  entryName,
  parseConfig,
  validateConfig,
} from "../../lib/config/mod.ts";
import { expectConfigError, issueAt, issuePaths, minimalConfig, toYaml } from "./fixture.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

Deno.test("minimal config parses and defaults are filled in", async () => {
  const { config } = await parseConfig(
    toYaml(minimalConfig()),
    "fixture.yaml",
    "local",
  );
  assert.equal(config.name, "tiny_test");
  assert.equal(config.victim.width, 1);
  assert.equal(config.victim.train.weight_decay, 0);
  assert.deepEqual(config.victim.train.lr_milestones, []);
  assert.equal(config.output.dir, "results/tiny_test");
  assert.equal(config.eval.batch_size, 512);
  const a = config.attacks[0];
  assert.equal(a.type, "dfme");
  if (a.type !== "dfme") throw new Error("unreachable");
  assert.equal(a.batch_size, 256);
  assert.equal(a.m, 1);
  assert.equal(a.d_iter, 5);
  assert.equal(a.eps, 1e-3);
  assert.equal(a.nz, 256);
  assert.equal(a.gen_width, 64);
  assert.equal(a.clone_lr, 0.1);
  assert.equal(a.gen_lr, 1e-4);
  assert.deepEqual(a.lr_decay_at, [0.1, 0.3, 0.5]);
  assert.equal(a.lr_gamma, 0.3);
  assert.equal(a.label, "soft");
});

Deno.test("unknown keys are rejected with their full path, at every level", async () => {
  const c = minimalConfig() as Obj;
  c.extra_top = 1;
  c.victim.train.learning_rate = 0.1;
  c.dataset.colour = true;
  c.attacks[0].gen_lrr = 1;
  c.defenses[0].eps = 0.1; // `none` takes no eps
  c.eval = { test_subset: 10, bogus: 1 };
  const err = await expectConfigError(c);
  assert.deepEqual(issuePaths(err), [
    "attacks.0.gen_lrr",
    "dataset.colour",
    "defenses.0.eps",
    "eval.bogus",
    "extra_top",
    "victim.train.learning_rate",
  ]);
  for (const i of err.issues) assert.match(i.message, /^unknown key/);
  assert.match(
    issueAt(err, "attacks.0.gen_lrr").message,
    /did you mean "gen_lr"/,
  );
});

Deno.test("every bad field is reported, each with path and expected/received", async () => {
  const c = minimalConfig() as Obj;
  c.name = "Tiny-Test";
  c.seeds = [0, -1, 1.5];
  c.victim.train.lr = "fast";
  c.victim.train.epochs = 0;
  c.victim.arch = "vgg16";
  delete c.victim.train.batch_size;
  c.attacks[0].budget = "lots";
  c.defenses.push({
    type: "meco",
    gamma: 0.1,
    q: 1,
    alpha: 0.1,
    bound: 0.1,
    epochs: 1,
    batch_size: 8,
    lr: "x",
  });
  const err = await expectConfigError(c, "local", "configs/mnist_dfme.yaml");
  assert.deepEqual(issuePaths(err), [
    "attacks.0.budget",
    "defenses.1.lr",
    "name",
    "seeds.1",
    "seeds.2",
    "victim.arch",
    "victim.train.batch_size",
    "victim.train.epochs",
    "victim.train.lr",
  ]);
  assert.equal(
    issueAt(err, "victim.train.lr").message,
    "expected number, received string",
  );
  assert.match(
    err.message,
    /^configs\/mnist_dfme\.yaml: victim\.train\.lr: expected number, received string/m,
  );
  assert.match(
    issueAt(err, "victim.train.batch_size").message,
    /missing required field/,
  );
  assert.match(
    issueAt(err, "victim.train.epochs").message,
    /expected number > 0, received 0/,
  );
  assert.match(
    issueAt(err, "seeds.2").message,
    /expected integer, received float/,
  );
  assert.match(issueAt(err, "victim.arch").message, /received "vgg16"/);
  assert.match(issueAt(err, "name").message, /snake_case/);
  // Every issue line starts with the file name; lines point into the YAML text.
  const lines = err.message.split("\n").slice(1);
  assert.equal(lines.length, err.issues.length);
  for (const l of lines) {
    assert.ok(l.startsWith("configs/mnist_dfme.yaml: "), l);
  }
  assert.ok(issueAt(err, "victim.train.lr").line! > 1);
});

Deno.test("issue line numbers point at the offending key", async () => {
  const text = [
    "name: tiny_test",
    "description: d",
    "seeds: [0]",
    "dataset: { name: mnist }",
    "victim:",
    "  arch: lenet5",
    "  train:",
    "    epochs: 2",
    "    batch_size: 32",
    "    optimizer: sgd",
    "    lr: fast",
    "defenses: [{ type: none }]",
    "profiles: { paper: {}, local: {}, smoke: {} }",
  ].join("\n");
  const err = await expectConfigError(text);
  assert.equal(issueAt(err, "victim.train.lr").line, 11);
  assert.equal(issueAt(err, "victim.train.lr").column, 5);
  assert.match(
    err.message,
    /fixture\.yaml: victim\.train\.lr: expected number, received string \(line 11, column 5\)/,
  );
});

Deno.test("unknown discriminator is reported at the type field with the options", async () => {
  const c = minimalConfig() as Obj;
  c.defenses = [{ type: "nonee" }];
  c.attacks = [{ budget: 10, clone_arch: "lenet5" }];
  const err = await expectConfigError(c);
  assert.deepEqual(issuePaths(err), ["attacks.0.type", "defenses.0.type"]);
  assert.match(
    issueAt(err, "defenses.0.type").message,
    /one of "none", "meco".*received "nonee"/,
  );
});

Deno.test("cross-field checks: schedules, momentum, labels, budgets, seeds", async () => {
  const c = minimalConfig() as Obj;
  c.victim.train.lr_milestones = [0.5, 0.3];
  let err = await expectConfigError(c);
  assert.deepEqual(issuePaths(err), ["victim.train.lr_milestones.1"]);

  const d = minimalConfig() as Obj;
  d.victim.train.optimizer = "adam"; // momentum 0.9 set: SGD only
  err = await expectConfigError(d);
  assert.deepEqual(issuePaths(err), ["victim.train.momentum"]);

  const e = minimalConfig() as Obj;
  e.seeds = [1, 2, 1];
  e.defenses = [{ type: "none" }, { type: "randp", eps: 0.1 }, {
    type: "none",
  }];
  e.attacks[0].eval_every = 5000;
  e.attacks.push({ type: "jbda", budget: 100, clone_arch: "lenet5" }); // seed_size 150 > budget
  err = await expectConfigError(e);
  assert.deepEqual(issuePaths(err), [
    "attacks.0.eval_every",
    "attacks.1.seed_size",
    "defenses.2.name",
    "seeds.2",
  ]);

  const f = minimalConfig() as Obj;
  f.victim.train.lr_milestones = [0, 1.5];
  f.seeds = [];
  err = await expectConfigError(f);
  assert.deepEqual(issuePaths(err), [
    "seeds",
    "victim.train.lr_milestones.0",
    "victim.train.lr_milestones.1",
  ]);
});

Deno.test("named duplicates are fine when labels differ", async () => {
  const c = minimalConfig() as Obj;
  c.defenses = [
    {
      type: "meco",
      name: "meco_q0",
      gamma: 0.1,
      q: 0,
      alpha: 0.1,
      bound: 0.1,
      epochs: 1,
      batch_size: 8,
      lr: 0.1,
    },
    {
      type: "meco",
      name: "meco_q5",
      gamma: 0.1,
      q: 5,
      alpha: 0.1,
      bound: 0.1,
      epochs: 1,
      batch_size: 8,
      lr: 0.1,
    },
  ];
  const { config } = await parseConfig(toYaml(c), "f.yaml", "local");
  assert.deepEqual(config.defenses.map(entryName), ["meco_q0", "meco_q5"]);
  const m = config.defenses[0];
  assert.ok(
    m.type === "meco" && m.sigma === "median" && m.width === 64 &&
      m.variant === "paper",
  );
});

const DEFENSES: Obj[] = [
  { type: "none" },
  {
    type: "meco",
    gamma: 0.1,
    q: 0,
    alpha: 0.1,
    sigma: 1.5,
    bound: 0.1,
    epochs: 1,
    batch_size: 8,
    lr: 0.1,
  },
  { type: "randp", eps: 0.1 },
  { type: "mad", eps: 0.5, argmax_preserving: true },
  { type: "grad", eps: 0.5 },
  { type: "reverse_sigmoid", beta: 0.7, gamma: 0.4 },
  { type: "high_conf_cutoff", threshold: 0.9 },
  { type: "rounding", decimals: 2 },
  { type: "top1" },
  { type: "gaussian_noise", std: 0.05 },
];

const ATTACKS: Obj[] = [
  { type: "dfme", budget: 1000, clone_arch: "lenet5" },
  { type: "maze", budget: 1000, clone_arch: "lenet5" },
  {
    type: "dfms_hl",
    budget: 1000,
    clone_arch: "resnet18_8x",
    proxy_dataset: "cifar100",
  },
  { type: "adaptive", budget: 1000, clone_arch: "lenet5", perturb_bound: 0.3 },
  {
    type: "knockoff",
    budget: 1000,
    clone_arch: "lenet5",
    strategy: "adaptive",
    surrogate_dataset: "fashion_mnist",
  },
  {
    type: "jbda",
    budget: 1000,
    clone_arch: "lenet5",
    seed_size: 100,
    rounds: 3,
    lambda: 0.2,
  },
];

Deno.test("every defense type is accepted, and rejects unknown keys", () => {
  for (const d of DEFENSES) {
    assert.ok(DefenseSchema.safeParse(d).success, `${d.type} should parse`);
    assert.ok(
      DefenseSchema.safeParse({ ...d, name: "labelled" }).success,
      `${d.type} with name`,
    );
    const bad = DefenseSchema.safeParse({ ...d, unexpected: 1 });
    assert.ok(
      !bad.success &&
        bad.error.issues.some((i) => i.code === "unrecognized_keys"),
      d.type,
    );
  }
  assert.deepEqual(
    DEFENSES.map((d) => d.type).sort(),
    [...DefenseSchema.optionsMap.keys()].map(String).sort(),
  );
});

Deno.test("every attack type is accepted with defaults, and rejects unknown keys", () => {
  for (const a of ATTACKS) {
    const r = AttackSchema.safeParse(a);
    assert.ok(r.success, `${a.type}: ${!r.success && r.error.message}`);
    const bad = AttackSchema.safeParse({ ...a, unexpected: 1 });
    assert.ok(
      !bad.success &&
        bad.error.issues.some((i) => i.code === "unrecognized_keys"),
      a.type,
    );
    assert.ok(
      !AttackSchema.safeParse({ ...a, budget: 0 }).success,
      `${a.type} budget 0`,
    );
  }
  assert.deepEqual(
    ATTACKS.map((a) => a.type).sort(),
    [...AttackSchema.optionsMap.keys()].map(String).sort(),
  );
  const maze = AttackSchema.parse(ATTACKS[1]);
  assert.ok(
    maze.type === "maze" && maze.n_dirs === 10 && maze.batch_size === 128,
  );
  const knock = AttackSchema.parse({ ...ATTACKS[4], strategy: undefined });
  assert.ok(knock.type === "knockoff" && knock.strategy === "random");
});

Deno.test("validateConfig checks a config built in code and names the source", () => {
  const { profiles: _p, ...c } = minimalConfig();
  assert.equal(validateConfig(c, "notebook").name, "tiny_test");
  assert.throws(
    () => validateConfig({ ...c, seeds: "0" }, "notebook"),
    (e) =>
      e instanceof ConfigError && e.file === "notebook" &&
      e.issues[0].path === "seeds",
  );
});

Deno.test("an attack's defenses list names defenses of the config, and is optional", async () => {
  const text = await Deno.readTextFile(new URL("../../configs/mnist_threat_model.yaml", import.meta.url));
  const ok = await parseConfig(text, "tm", "smoke");
  assert.deepEqual(ok.config.attacks.map((a) => a.defenses), [undefined, ["meco"], ["undefended"]]);
  await assert.rejects(
    () => parseConfig(text.replace("defenses: [meco] }", "defenses: [mecco] }"), "bad", "smoke"),
    /attacks\.1\.defenses\.0.*expected one of the defenses \(undefended, meco\), received "mecco"/s,
  );
});
