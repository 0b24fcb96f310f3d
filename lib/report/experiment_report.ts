/**
 * The report of one experiment: its results table (mean ± std over seeds,
 * the paper's numbers beside ours) and its clone-accuracy-vs-queries figure,
 * read from results/<name>/ and written back as figure.html / figure.png.
 *
 * @module
 */
import type { Summary } from "../experiments/runner.ts";
import { display, type Displayable } from "./display.ts";
import { curveFigure, figureHtml, type PlotlySpec, renderPng } from "./figure.ts";
import { paperRow } from "./paper.ts";
import { aggregate, type AggregateRow, type Column, formatStat, htmlTable, type Stat, textTable } from "./table.ts";

/** A loaded experiment result. */
export interface ExperimentReport {
  /** summary.json. */
  summary: Summary;
  /** Aggregated rows (mean ± std per defense × attack). */
  table: AggregateRow[];
  /** The curve figure. */
  figure: PlotlySpec;
}

/** Curves file written by the runner. */
interface CurvesFile {
  curves: { defense: string; attack: string; seed: number; points: { queries: number; cloneAcc: number }[] }[];
}

/** Reads results/<name>/ and aggregates it. */
export async function loadReport(dir: string): Promise<ExperimentReport> {
  const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`)) as Summary;
  const curves = JSON.parse(await Deno.readTextFile(`${dir}/curves.json`)) as CurvesFile;
  const table = aggregate(summary.rows, ["defense", "attack"], ["target_acc", "l1", "clone_acc"]);
  const figure = curveFigure(
    curves.curves.map((c) => ({ label: `${c.defense} / ${c.attack}`, points: c.points })),
    `${summary.meta.name}: clone accuracy vs queries (${summary.meta.profile} profile)`,
  );
  return { summary, table, figure };
}

function paperCell(name: string, r: AggregateRow, key: "target_acc" | "l1" | "clone_acc"): string {
  const p = paperRow(name, String(r.defense), String(r.attack))?.[key];
  return p === undefined ? "—" : key === "l1" ? p.toFixed(4) : p.toFixed(2);
}

/** The columns of the standard defense × attack table. */
export function reportColumns(name: string): Column[] {
  const stat = (k: string) => (r: AggregateRow) => r[k] as Stat | null;
  return [
    { header: "defense", cell: (r) => String(r.defense) },
    { header: "attack", cell: (r) => String(r.attack) },
    { header: "seeds", cell: (r) => String((r.target_acc as Stat | null)?.n ?? 0) },
    { header: "target acc % (ours)", cell: (r) => formatStat(stat("target_acc")(r), true) },
    { header: "target acc % (paper)", cell: (r) => paperCell(name, r, "target_acc") },
    { header: "L1 (ours)", cell: (r) => formatStat(stat("l1")(r), false, 4) },
    { header: "L1 (paper)", cell: (r) => paperCell(name, r, "l1") },
    { header: "clone acc % (ours)", cell: (r) => formatStat(stat("clone_acc")(r), true) },
    { header: "clone acc % (paper)", cell: (r) => paperCell(name, r, "clone_acc") },
  ];
}

/** The table as a notebook display (HTML + text). */
export function tableDisplay(rep: ExperimentReport): Displayable {
  const cols = reportColumns(rep.summary.meta.name);
  const m = rep.summary.meta;
  const caption = `${m.name} — profile ${m.profile}, budget ${m.budget ?? "various"}, backend ${m.backend}, ` +
    `commit ${m.commit.slice(0, 12)}, ${m.minutes.toFixed(0)} min of attacks`;
  return display({
    "text/html": htmlTable(rep.table, cols, caption),
    "text/plain": `${caption}\n${textTable(rep.table, cols)}`,
  });
}

/** The figure as a notebook display (Plotly MIME bundle, PNG when rendered). */
export async function figureDisplay(rep: ExperimentReport, dir: string): Promise<Displayable> {
  const bundle: Record<string, unknown> = {
    "application/vnd.plotly.v1+json": rep.figure,
    "text/plain": `figure: ${dir}/figure.html`,
  };
  try {
    const png = await Deno.readFile(`${dir}/figure.png`);
    let bin = "";
    for (let i = 0; i < png.length; i += 0x8000) bin += String.fromCharCode(...png.subarray(i, i + 0x8000));
    bundle["image/png"] = btoa(bin);
  } catch {
    // no PNG rendered
  }
  return display(bundle);
}

/** Writes figure.html (plotly.js inlined) and, when Chromium is installed, figure.png into `dir`. */
export async function writeFigure(rep: ExperimentReport, dir: string): Promise<{ html: string; png?: string }> {
  const m = rep.summary.meta;
  const html = `${dir}/figure.html`;
  const tmp = `${html}.tmp-${crypto.randomUUID()}`;
  await Deno.writeTextFile(tmp, await figureHtml(rep.figure, `commit ${m.commit} — ${m.command}`));
  await Deno.rename(tmp, html);
  const png = `${dir}/figure.png`;
  return (await renderPng(html, png)) ? { html, png } : { html };
}
