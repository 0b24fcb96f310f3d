/**
 * Executes every notebook in notebooks/ (new ones are picked up by
 * themselves) headlessly on the Deno kernel (jupyter nbconvert) at the
 * `smoke` profile with `MECO_RECOMPUTE=1` (notebooks compute nothing unless
 * asked, so the test asks), and fails on any error output, on a notebook
 * without a computed verdict, and on an output showing this machine's
 * repository path. The notebooks share one fresh cell cache, so two notebooks
 * of one config compute it once. Outside CI it is skipped (with a message)
 * when Jupyter is absent.
 */
import assert from "node:assert/strict";
import { optionalPart } from "../../lib/system/optional_parts.ts";

const root = new URL("../../", import.meta.url).pathname;
const notebooks = [...Deno.readDirSync(`${root}notebooks`)]
  .filter((e) => e.isFile && e.name.endsWith(".ipynb"))
  .map((e) => e.name)
  .sort();

async function hasJupyter(): Promise<boolean> {
  try {
    const out = await new Deno.Command("jupyter", { args: ["kernelspec", "list"], stdout: "piped", stderr: "null" })
      .output();
    return out.success && new TextDecoder().decode(out.stdout).includes("deno");
  } catch {
    return false;
  }
}

// Skipped only where Jupyter is missing (or switched off by MECO_WITHOUT); where it is installed, the Deno kernel
// must be there too.
const jupyter = optionalPart("jupyter");
const available = jupyter.available;
if (available && !(await hasJupyter())) {
  throw new Error(`Jupyter is installed but has no deno kernel; install it: ${jupyter.install}`);
}
if (!available) console.warn(`skipping notebook execution: ${jupyter.reason}`);

// One cell cache for this file's tests, made before the first and removed after the last (whichever run).
let cache = "";
Deno.test.beforeAll(async () => {
  cache = await Deno.makeTempDir({ prefix: "meco-nb-cache-" });
});
Deno.test.afterAll(async () => {
  await Deno.remove(cache, { recursive: true });
});

for (const nb of notebooks) {
  Deno.test({
    name: `notebook ${nb} executes at the smoke profile without errors`,
    ignore: !available,
    fn: async () => {
      // A cell error or a failed run fails at once. Missing display output is retried once: on a loaded machine the
      // Deno kernel has been seen to publish a display after the cell's idle status, which nbclient then drops.
      try {
        await executeAndCheck(nb);
      } catch (e) {
        if (!(e instanceof DisplayMissing)) throw e;
        console.warn(`${nb}: ${e.message}; executing once more`);
        await executeAndCheck(nb);
      }
    },
  });
}

class DisplayMissing extends Error {}

async function executeAndCheck(nb: string): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "meco-nb-" });
  try {
    const out = await new Deno.Command("jupyter", {
      args: [
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--ExecutePreprocessor.kernel_name=deno",
        "--ExecutePreprocessor.timeout=900",
        // The kernel can publish a cell's last outputs seconds after its reply on a loaded machine; nbclient's
        // default 4 s wait then drops them silently. Wait longer, and fail rather than lose output.
        "--ExecutePreprocessor.iopub_timeout=120",
        "--ExecutePreprocessor.raise_on_iopub_timeout=True",
        `${root}notebooks/${nb}`,
        "--output-dir",
        tmp,
      ],
      env: { MECO_PROFILE: "smoke", MECO_CACHE_DIR: cache, MECO_RECOMPUTE: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `nbconvert failed for ${nb}:\n${err.slice(-3000)}`);
    const executed = JSON.parse(await Deno.readTextFile(`${tmp}/${nb}`));
    for (const cell of executed.cells) {
      for (const o of cell.outputs ?? []) {
        assert.notEqual(o.output_type, "error", `${nb}: ${o.ename}: ${o.evalue}`);
      }
    }
    const code = executed.cells.filter((c: { cell_type: string }) => c.cell_type === "code");
    assert.ok(code.every((c: { execution_count: number | null }) => c.execution_count !== null), "cells not run");
    // Every notebook shows a table with the paper's column and a figure, unless it says its data is missing.
    const bundles = code.flatMap((c: { outputs: { data?: Record<string, unknown> }[] }) =>
      c.outputs.map((o) => o.data ?? {})
    ) as Record<string, unknown>[];
    const missing = bundles.some((b) => String(b["text/plain"] ?? "").includes("not run here"));
    // nbformat stores a text output as one string or as a list of lines.
    const textOf = (v: unknown) => Array.isArray(v) ? v.join("") : String(v ?? "");
    if (!bundles.some((b) => /^Verdict — |\nVerdict — /.test(textOf(b["text/plain"])))) {
      throw new DisplayMissing(`${nb}: no verdict output`);
    }
    const texts = code.flatMap((c: { outputs: { text?: string | string[]; data?: Record<string, unknown> }[] }) =>
      c.outputs.map((o) => textOf(o.text) + textOf(o.data?.["text/plain"]))
    ) as string[];
    const leaked = texts.find((t) => t.includes(root));
    assert.equal(leaked, undefined, `${nb}: an output shows the machine path ${root}`);
    if (!missing) {
      if (!bundles.some((b) => /\(paper\)/.test(String(b["text/html"] ?? "")))) {
        throw new DisplayMissing(`${nb}: no table with the paper's column`);
      }
      if (!bundles.some((b) => "application/vnd.plotly.v1+json" in b)) throw new DisplayMissing(`${nb}: no figure`);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
