/**
 * Writing an experiment's artifacts: summary.json, rows.csv, curves.json.
 *
 * @module
 */
import type { Row, Summary } from "./runner.ts";
import { writeJson, writeTextAtomic } from "./cache.ts";

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? "" : String(v);
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Rows as CSV with a header line. */
export function toCsv(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return "";
  const cols = Object.keys(rows[0]);
  return [cols.join(","), ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(","))].join("\n") + "\n";
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
