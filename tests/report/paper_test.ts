import assert from "node:assert/strict";
import {
  budgetTable,
  type ExperimentReport,
  metricBars,
  PAPER,
  type PaperCell,
  paperCell,
  paperCells,
  paperRow,
  paperSource,
  paperTableDisplay,
  paperTableRows,
  reportColumns,
  ROW_METRICS,
} from "../../lib/report/mod.ts";
import { aggregate } from "../../lib/report/table.ts";

const JSON_URL = new URL("../../lib/report/paper_numbers.json", import.meta.url);
/** Where CI puts the shared folder: beside the repository. */
const PAPER_DIR = new URL("../../../shared/paper/", import.meta.url);

/** Every object's keys in a JSON text, with the keys an object repeats (JSON.parse keeps only the last). */
function duplicateKeys(text: string): string[] {
  const dups: string[] = [];
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "{") {
      stack.push(new Set());
      expectKey = true;
    } else if (ch === "[") stack.push(null);
    else if (ch === "}" || ch === "]") stack.pop();
    else if (ch === ",") expectKey = stack.at(-1) !== null;
    else if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      const str = JSON.parse(text.slice(i, j + 1)) as string;
      const keys = stack.at(-1);
      if (expectKey && keys) {
        if (keys.has(str)) dups.push(str);
        keys.add(str);
        expectKey = false;
      }
      i = j;
    }
  }
  return dups;
}

/** The paper's text as the data file quotes it: LaTeX markup dropped, ± % × ∼ ↓ ↑ as symbols, blanks collapsed. */
function normalise(text: string): string {
  let s = text.replaceAll("\\textbf{", "").replaceAll("\\mathbf{", "");
  s = s.replaceAll("\\begin{array}{c}", " ").replaceAll("\\end{array}", " ").replaceAll("\\\\", " ");
  s = s.replaceAll("$", "").replaceAll("{", "").replaceAll("}", "");
  for (
    const [a, b] of [["\\pm", "±"], ["\\%", "%"], ["\\times", "×"], ["\\sim", "∼"], ["\\downarrow", "↓"], [
      "\\uparrow",
      "↑",
    ]]
  ) {
    s = s.replaceAll(a, b);
  }
  return s.replace(/[ \t]+/g, " ");
}

/** The paper's text, or undefined when the shared folder is not beside the repository. */
async function paperText(): Promise<string | undefined> {
  try {
    for await (const e of Deno.readDir(PAPER_DIR)) {
      if (e.isFile && e.name.endsWith(".txt")) return await Deno.readTextFile(new URL(e.name, PAPER_DIR));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return undefined;
}

/** True when `values` occur in this order on one line of `text`. */
function inOrderOnALine(text: string, values: string[]): boolean {
  return text.split("\n").some((line) => {
    let at = 0;
    for (const v of values) {
      const i = line.indexOf(v, at);
      if (i < 0) return false;
      at = i + v.length;
    }
    return true;
  });
}

/** The text of table `t`: from its last caption "Table t:" to the next caption of another table (or 3000 characters). */
function tableRegion(text: string, t: string): string {
  const start = text.lastIndexOf(`Table ${t}:`);
  assert.ok(start >= 0, `no caption of Table ${t} in the paper's text`);
  const next = text.slice(start + 8).search(/Table \d+:/);
  return text.slice(start, next < 0 ? start + 3000 : start + 8 + next);
}

Deno.test("paper_numbers.json: no repeated key in any object", async () => {
  assert.deepEqual(duplicateKeys(await Deno.readTextFile(JSON_URL)), []);
  assert.deepEqual(duplicateKeys('{"a": 1, "b": {"a": 2, "c": [{"a": 3}, {"a": 4}]}, "s": "a"}'), []);
  assert.deepEqual(duplicateKeys('{"a": 1, "b": {"c": 2, "c": 3}, "a": "x"}'), ["c", "a"]);
});

Deno.test("paper_numbers.json is well formed: every number has table, row, column, metric, unit, value as printed", () => {
  assert.ok(PAPER.numbers.length >= 60, `${PAPER.numbers.length} numbers`);
  for (const [id, t] of Object.entries(PAPER.tables)) {
    assert.ok(t.title.length > 0 && /^(complete|partial|unavailable)/.test(t.status), `table ${id}: ${t.status}`);
    const n = paperCells(id).length;
    if (t.status.startsWith("unavailable")) assert.equal(n, 0, `table ${id} is unavailable but has numbers`);
    else assert.ok(n > 0, `table ${id} is ${t.status} but has no numbers`);
  }
  for (const c of PAPER.numbers) {
    const where = `table ${c.table}, ${c.row} / ${c.column}`;
    assert.ok(PAPER.tables[c.table] !== undefined, `${where}: unknown table`);
    for (const k of ["row", "column", "metric", "unit", "printed"] as const) {
      assert.ok(typeof c[k] === "string" && c[k].length > 0, `${where}: no ${k}`);
    }
    assert.ok(Number.isFinite(c.value), `${where}: value ${c.value}`);
    // The value (and std) are the printed number: "98.63 ± 0.28%" → 98.63, 0.28; "10M" → 1e7.
    const m = c.printed.match(/^([0-9.]+)(?: ± ([0-9.]+))?(%|M)?$/);
    assert.ok(m !== null, `${where}: printed '${c.printed}'`);
    assert.equal(c.value, Number(m[1]) * (m[3] === "M" ? 1e6 : 1), `${where}: value vs printed`);
    assert.equal(c.std, m[2] === undefined ? undefined : Number(m[2]), `${where}: std vs printed`);
    if (c.unit === "%") assert.ok(c.value >= 0 && c.value <= 100, `${where}: ${c.value} is not a percentage`);
    if (c.unit === "l1") assert.ok(c.value >= 0 && c.value <= 2, `${where}: ${c.value} is not an L1 distance`);
    if (c.table === "text") assert.ok(c.quote?.includes(c.printed), `${where}: the quote does not contain the number`);
    else {
      assert.ok(ROW_METRICS.includes(c.metric as never), `${where}: metric ${c.metric}`);
      assert.ok(c.dataset !== undefined && c.defense !== undefined, `${where}: no setting`);
    }
  }
  for (const [name, e] of Object.entries(PAPER.experiments)) {
    for (const t of e.tables) assert.ok(PAPER.tables[t] !== undefined, `${name} mirrors unknown table ${t}`);
  }
});

Deno.test("paper_numbers.json: one number per (table, row, column) and per setting of a table", () => {
  const printedKeys = new Map<string, PaperCell>();
  const settingKeys = new Map<string, PaperCell>();
  for (const c of PAPER.numbers) {
    const k = JSON.stringify([c.table, c.row, c.column]);
    assert.ok(!printedKeys.has(k), `repeated ${k}`);
    printedKeys.set(k, c);
    if (c.table === "text") continue;
    const s = JSON.stringify([c.table, c.dataset, c.defense, c.attack, c.victim_arch, c.clone_arch, c.metric]);
    assert.ok(!settingKeys.has(s), `two numbers of table ${c.table} for the setting ${s}`);
    settingKeys.set(s, c);
  }
});

Deno.test("paper_numbers.json: Tables 1–5 in full", () => {
  const count = (t: string) => paperCells(t).length;
  // Table 1: (5 DFME + 5 MAZE rows) × 3 clones on CIFAR10, 5 DFME rows × 3 on CIFAR100 (its MAZE row prints '-').
  assert.deepEqual(["1", "2", "3", "4", "5"].map(count), [45, 30, 30, 18, 9]);
  for (const d of ["undefended", "randp", "mad", "grad", "meco"]) {
    for (const ds of ["mnist", "cifar10", "cifar100"]) {
      for (const m of ["target_acc", "l1"]) {
        const n = paperCells("3").filter((c) => c.defense === d && c.dataset === ds && c.metric === m).length;
        assert.equal(n, 1, `Table 3: ${d} ${ds} ${m}`);
      }
    }
  }
});

Deno.test("paper_numbers.json against the paper's text, when ../shared/paper is there", async (t) => {
  const raw = await paperText();
  if (raw === undefined) {
    console.log(`skipped: the paper's text is not in ${PAPER_DIR.pathname} (CI copies shared/ beside the repository)`);
    return;
  }
  const text = normalise(raw);
  await t.step("every number is printed in the text, every quote is the text's", () => {
    for (const c of PAPER.numbers) {
      if (c.table === "text") assert.ok(text.includes(c.quote!), `not in the text: '${c.quote}'`);
      else assert.ok(tableRegion(text, c.table).includes(c.printed), `Table ${c.table}: '${c.printed}' not printed`);
    }
  });
  await t.step(
    "rows and columns: each row's numbers in column order (Tables 1, 3), each column's in row order (2, 4, 5)",
    () => {
      for (
        const [table, by] of [["1", "row"], ["3", "row"], ["2", "column"], ["4", "column"], ["5", "column"]] as const
      ) {
        const region = tableRegion(text, table);
        const cells = paperCells(table);
        // Blocks: Table 1 prints its rows once per dataset, Tables 2, 4 and 5 their columns once per attack.
        const keyOf = (c: PaperCell) => `${c[by]} (${by === "row" ? c.dataset : c.row.split(" / ")[0]})`;
        for (const key of new Set(cells.map(keyOf))) {
          const values = cells.filter((c) => keyOf(c) === key).map((c) => c.printed);
          assert.ok(inOrderOnALine(region, values), `Table ${table}, ${by} ${key}: ${values.join(" | ")}`);
        }
      }
    },
  );
  await t.step("spot checks", () => {
    const v = (table: string, row: string, column: string) =>
      PAPER.numbers.find((c) => c.table === table && c.row === row && c.column === column);
    assert.equal(v("3", "MeCo", "MNIST / ACC")?.printed, "98.63 ± 0.28%");
    assert.ok(inOrderOnALine(tableRegion(text, "3"), ["MeCo", "98.63 ± 0.28%", "0.0126", "94.17 ± 0.56%", "0.099"]));
    assert.equal(v("3", "P-poison", "CIFAR100 / ACC")?.printed, "75.42 ± 1.21%");
    assert.ok(inOrderOnALine(tableRegion(text, "3"), ["P-poison", "98.87 ± 0.35%", "1.0", "94.58 ± 0.61%"]));
    assert.equal(v("1", "DFME / MeCo", "CIFAR10 / DenseNet121")?.printed, "61.38 ± 2.41%");
    assert.ok(inOrderOnALine(tableRegion(text, "1"), ["GRAD", "26.06 ± 1.81%", "21.18 ± 1.58%", "18.09 ± 1.72%"]));
    assert.equal(v("1", "MAZE / GRAD", "CIFAR10 / ResNet18-8X")?.value, 26.06);
    assert.equal(v("2", "DFMS-HL / MeCo", "CIFAR100 / ResNet18-8X")?.printed, "59.30 ± 1.70%");
    assert.equal(v("4", "MAZE / MeCo", "DenseNet121")?.value, 16.31);
    assert.equal(v("5", "DFME / MeCo, hard label", "MobileNetV2")?.printed, "38.67 ± 0.97%");
    assert.ok(text.includes("we set the number of queries to be 2M for MNIST"));
  });
});

Deno.test("paper rows: utility numbers apply to every attack; settings pick clone and victim; unknown rows give nothing", () => {
  assert.deepEqual(paperRow("mnist_dfme", "meco", "dfme"), { target_acc: 98.63, l1: 0.0126 });
  assert.deepEqual(paperRow("mnist_utility", "meco", "none"), { target_acc: 98.63, l1: 0.0126 });
  assert.deepEqual(paperRow("mnist_baselines", "randp", "dfme"), { target_acc: 98.52, l1: 1 });
  assert.deepEqual(paperRow("mnist_baselines", "mad", "dfme"), { target_acc: 98.87, l1: 1 });
  assert.deepEqual(paperRow("cifar10_score", "grad", "maze"), { target_acc: 94.65, l1: 1, clone_acc: 26.06 });
  assert.deepEqual(paperRow("cifar100_score", "meco", "dfme"), { target_acc: 75.36, l1: 0.312, clone_acc: 29.57 });
  assert.deepEqual(paperRow("cifar100_score", "meco", "maze"), { target_acc: 75.36, l1: 0.312 }); // printed '-'
  assert.equal(paperRow("cifar10_clone_archs", "meco", "dfme_densenet121")?.clone_acc, 61.38);
  assert.equal(paperRow("cifar10_clone_archs", "undefended", "dfme_mobilenet_v2")?.clone_acc, 75.23);
  assert.equal(paperRow("cifar10_decision", "meco", "dfms_hl")?.clone_acc, 76.86);
  assert.equal(paperRow("cifar10_decision", "meco", "dfme_hard")?.clone_acc, 41.23);
  assert.equal(paperRow("cifar10_decision", "undefended", "dfme_hard")?.clone_acc, undefined);
  assert.equal(paperCell("cifar10_score", "meco", "dfme", "clone_acc")?.std, 1.96);
  assert.equal(paperRow("cifar10_googlenet", "meco", "dfme"), undefined); // Table 9 is in the appendix
  assert.equal(paperRow("mnist_dfme", "meco_official", "dfme"), undefined);
  assert.equal(paperRow("no_such_experiment", "meco", "dfme"), undefined);
  assert.equal(paperSource("mnist_dfme"), "Table 7 (unavailable); Table 3 (complete)");
  assert.match(paperSource("no_such_experiment"), /no table/);
});

Deno.test("the paper's table as printed: rows, columns and the text's numbers", () => {
  const { rows, columns } = paperTableRows("3");
  assert.deepEqual(rows.map((r) => r.row), ["undefended", "RandP", "P-poison", "GRAD", "MeCo"]);
  assert.deepEqual(columns.map((c) => c.header).slice(1, 3), ["MNIST / ACC", "MNIST / l1 norm"]);
  assert.deepEqual(columns.map((c) => c.cell(rows[4])).slice(1), [
    "98.63 ± 0.28%",
    "0.0126",
    "94.17 ± 0.56%",
    "0.099",
    "75.36 ± 0.68%",
    "0.312",
  ]);
  const shown = String(paperTableDisplay("4")[Symbol.for("Jupyter.display")]()["text/plain"]);
  assert.match(shown, /^Paper, Table 4: .*adaptive attack/);
  assert.match(shown, /Table 1 prints 17\.95 ± 1\.46%/);
  const claims = String(paperTableDisplay("text")[Symbol.for("Jupyter.display")]()["text/plain"]);
  assert.match(claims, /\|1\.3\|MeCo increases the training cost by 1\.3 ×\|/);
});

const report: ExperimentReport = {
  summary: {
    meta: {
      name: "mnist_dfme",
      commit: "c",
      command: "x",
      backend: "wasm",
      profile: "local",
      config_hash: "h",
      cache_version: 1,
      budget: 400,
      seeds: [0, 1],
      minutes: 1,
      generated: "",
    },
    rows: [],
  },
  table: aggregate(
    [
      { defense: "meco", attack: "dfme", target_acc: 0.99, l1: 0.01, clone_acc: 0.5 },
      { defense: "meco", attack: "dfme", target_acc: 0.98, l1: 0.02, clone_acc: 0.7 },
    ],
    ["defense", "attack"],
    ["target_acc", "l1", "clone_acc"],
  ),
  figure: { data: [], layout: {} },
  curves: [
    {
      defense: "meco",
      attack: "dfme",
      seed: 0,
      points: [{ queries: 100, cloneAcc: 0.2 }, { queries: 400, cloneAcc: 0.5 }],
    },
    {
      defense: "meco",
      attack: "dfme",
      seed: 1,
      points: [{ queries: 100, cloneAcc: 0.4 }, { queries: 400, cloneAcc: 0.7 }],
    },
  ],
};

Deno.test("report columns put the paper's number and ours − paper beside ours", () => {
  const cols = reportColumns("mnist_dfme");
  const cell = (h: string) => cols.find((c) => c.header === h)!.cell(report.table[0]);
  assert.equal(cell("target acc % (ours)"), "98.50 ± 0.71");
  assert.equal(cell("target acc % (paper)"), "98.63 ± 0.28");
  assert.equal(cell("Δ target acc %"), "-0.13");
  assert.equal(cell("L1 (paper)"), "0.0126");
  assert.equal(cell("Δ L1"), "+0.0024");
  assert.equal(cell("clone acc % (paper)"), "—");
  assert.equal(cell("Δ clone acc %"), "—");
  assert.deepEqual(reportColumns("mnist_dfme", ["l1"]).map((c) => c.header).slice(3), [
    "L1 (ours)",
    "L1 (paper)",
    "Δ L1",
  ]);
});

Deno.test("the budget table takes each curve's last point at or below each budget", () => {
  const { rows, columns } = budgetTable(report, [50, 100, 399, 400]);
  const cells = columns.map((c) => c.cell(rows[0]));
  assert.deepEqual(cells, ["meco", "dfme", "2", "—", "30.00 ± 14.14", "30.00 ± 14.14", "60.00 ± 14.14"]);
});

Deno.test("metric bars show percentages with the std as error bars", () => {
  const fig = metricBars(report, "clone_acc");
  assert.deepEqual(fig.data[0].x, ["meco / dfme"]);
  const y = fig.data[0].y as number[];
  assert.equal(y.length, 1);
  assert.ok(Math.abs(y[0] - 60) < 1e-9, `bar at ${y[0]}`);
  assert.ok(Math.abs((fig.data[0].error_y as { array: number[] }).array[0] - 14.142) < 1e-3);
});
