import assert from "node:assert/strict";
import {
  GLANCE_END,
  GLANCE_START,
  glanceVerdict,
  notebookConfigs,
  notebookTitle,
  replaceGlance,
  storedVerdict,
} from "../../lib/report/mod.ts";
import type { Summary } from "../../lib/experiments/runner.ts";

Deno.test("notebookConfigs finds the configs a notebook's code loads, in order, once each", () => {
  const nb = {
    cells: [
      { cell_type: "markdown", source: 'ensureResults("not_code.yaml")' },
      {
        cell_type: "code",
        source: ['await tableFor("cifar10_score.yaml");\n', 'await tableFor("cifar100_score.yaml");'],
      },
      { cell_type: "code", source: 'const e = await ensureResults("cifar10_score.yaml");' },
    ],
  };
  assert.deepEqual(notebookConfigs(nb), ["cifar10_score.yaml", "cifar100_score.yaml"]);
});

Deno.test("replaceGlance rewrites only the marked block and refuses a README without markers", () => {
  const text = `# R\n\n${GLANCE_START}\nold line\n${GLANCE_END}\nafter\n`;
  assert.equal(replaceGlance(text, ["- a", "- b"]), `# R\n\n${GLANCE_START}\n- a\n- b\n${GLANCE_END}\nafter\n`);
  assert.throws(() => replaceGlance("# R\n", ["- a"]), /markers/);
});

Deno.test("storedVerdict computes the sentence from the stored rows", () => {
  const rows = [0, 1, 2].flatMap((seed) => [
    {
      defense: "undefended",
      attack: "dfme",
      seed,
      target_acc: 0.99,
      l1: 0,
      clone_acc: 0.9 + 0.01 * seed,
      queries: 1,
      minutes: 1,
    },
    {
      defense: "meco",
      attack: "dfme",
      seed,
      target_acc: 0.985,
      l1: 0.01,
      clone_acc: 0.5 + 0.01 * seed,
      queries: 1,
      minutes: 1,
    },
  ]);
  const s = { meta: { name: "x", profile: "local" }, rows } as unknown as Summary;
  const v = storedVerdict(s);
  assert.match(
    v.sentence,
    /^x \(local profile\): .*"meco lowers the dfme clone's accuracy vs undefended" holds \(Δ -40\.00 /,
  );
  // The README's compact form: the headline claim with its interval, then how the others came out.
  const line = glanceVerdict(v, 3);
  assert.match(
    line,
    /^x \(local, 3 seeds\): .*"meco lowers the dfme clone's accuracy vs undefended": holds \(Δ -40\.00 \[/,
  );
  assert.match(line, /1 more claim: 1 holds$/, "MeCo costs 0.5 point of accuracy: within the 1-point bound");
});

Deno.test("notebookTitle is the first Markdown heading", () => {
  const nb = {
    cells: [
      { cell_type: "code", source: "# not a heading: code" },
      { cell_type: "markdown", source: ["Intro\n", "# Table 7: DFME on MNIST\n", "text"] },
      { cell_type: "markdown", source: "# Later heading" },
    ],
  };
  assert.equal(notebookTitle(nb), "Table 7: DFME on MNIST");
  assert.equal(notebookTitle({ cells: [] }), "");
});
