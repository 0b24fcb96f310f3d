/**
 * Writing an experiment's artifacts: summary.json, rows.csv, curves.json.
 *
 * @module
 */
import type { Row, Summary } from "./rows.ts";
import * as aq from "arquero";
import { writeJson, writeTextAtomic } from "./cache.ts";
import type { RunProvenance } from "./provenance.ts";

/** Rows as CSV with a header line (arquero's `toCSV`); a row's provenance as run_commit, run_date, … columns. */
export function toCsv(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return "";
  // A row's provenance becomes run_* columns; columns are the union of every row's fields, in first-seen order.
  const flat = rows.map(({ provenance, ...r }) => {
    const p = provenance as RunProvenance | undefined;
    return p === undefined ? r : {
      ...r,
      run_commit: p.commit,
      run_date: p.date,
      run_backend: p.backend,
      run_onednn_isa: p.onednn_isa,
      run_cpu: p.cpu,
    };
  });
  const columns = [...new Set(flat.flatMap((r) => Object.keys(r)))];
  return aq.from(flat.map((r) => Object.fromEntries(columns.map((c) => [c, (r as Record<string, unknown>)[c]]))))
    .toCSV();
}

/** Writes the three artifacts into `dir` (each atomically). */
export async function writeResults(dir: string, summary: Summary, rows: Row[]): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await writeJson(`${dir}/summary.json`, summary);
  await writeTextAtomic(`${dir}/rows.csv`, toCsv(summary.rows));
  await writeJson(`${dir}/curves.json`, {
    meta: { commit: summary.meta.commit, command: summary.meta.command, config_hash: summary.meta.config_hash },
    curves: rows.map((r) => ({ defense: r.defense, attack: r.attack, seed: r.seed, points: r.curve })),
  });
}
