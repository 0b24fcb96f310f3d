/**
 * Writing an experiment's artifacts: summary.json, rows.csv, curves.json.
 *
 * @module
 */
import type { Row, Summary } from "./runner.ts";
import * as aq from "arquero";
import { writeJson, writeTextAtomic } from "./cache.ts";

/** Rows as CSV with a header line (arquero's `toCSV`; the columns are the first row's keys). */
export function toCsv(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return "";
  return aq.from(rows, Object.keys(rows[0])).toCSV();
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
