import assert from "node:assert/strict";
import { ConfigError, loadConfig, parseConfig } from "../../lib/config/mod.ts";
import { expectConfigError, minimalConfig, toYaml } from "./fixture.ts";

Deno.test("a YAML syntax error names the file and the line", async () => {
  const lines = toYaml(minimalConfig()).split("\n");
  const at = lines.findIndex((l) => l.startsWith("seeds:"));
  lines[at] = "seeds: [0, 1"; // unterminated flow sequence
  const err = await expectConfigError(
    lines.join("\n"),
    "local",
    "configs/broken.yaml",
  );
  assert.equal(err.issues.length >= 1, true);
  const first = err.issues[0];
  assert.equal(first.path, "(yaml)");
  assert.match(first.message, /YAML syntax error/);
  assert.equal(typeof first.line, "number");
  assert.ok(
    first.line! >= at + 1,
    `line ${first.line} should be at or after ${at + 1}`,
  );
  assert.match(
    err.message,
    /^configs\/broken\.yaml: \(yaml\): YAML syntax error: .*\(line \d+, column \d+\)$/m,
  );
});

Deno.test("bad indentation, tabs and duplicate keys are syntax errors with their line", async () => {
  const dup = await expectConfigError("name: a\ndescription: x\nname: b\n");
  assert.equal(dup.issues[0].line, 3);
  assert.match(dup.issues[0].message, /unique/);

  const tab = await expectConfigError("name: a\nvictim:\n\tarch: lenet5\n");
  assert.equal(tab.issues[0].line, 3);

  const indent = await expectConfigError(
    "victim:\n    arch: lenet5\n  width: 2\n",
  );
  assert.ok(indent.issues[0].line! >= 2);
});

Deno.test("a document that is not a mapping is rejected", async () => {
  for (const text of ["", "- 1\n- 2\n", "just a string\n"]) {
    const err = await expectConfigError(text);
    assert.equal(err.issues[0].path, "(root)");
    assert.match(err.issues[0].message, /expected a mapping at the top level/);
  }
});

Deno.test("a missing file is a ConfigError naming it", async () => {
  await assert.rejects(
    () => loadConfig("configs/does_not_exist.yaml", "local"),
    (e) =>
      e instanceof ConfigError && e.file === "configs/does_not_exist.yaml" &&
      /not found/.test(e.message),
  );
});

Deno.test("anchors and merge keys are allowed; the resolved config is plain data", async () => {
  const text = [
    "name: anchored",
    "description: d",
    "seeds: [0]",
    "dataset: { name: mnist }",
    "victim: { arch: lenet5, train: { epochs: 1, batch_size: 8, optimizer: adam, lr: 0.001 } }",
    "defenses: [{ type: none }]",
    "attacks:",
    "  - &atk { type: dfme, budget: 1000, clone_arch: lenet5 }",
    "profiles:",
    "  paper: {}",
    "  local: {}",
    "  smoke: { attacks: [{ <<: *atk, budget: 10 }] }",
  ].join("\n");
  const { config } = await parseConfig(text, "a.yaml", "smoke");
  assert.equal(config.attacks[0].budget, 10);
  assert.equal(config.attacks[0].clone_arch, "lenet5");
});
