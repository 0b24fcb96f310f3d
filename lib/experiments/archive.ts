/**
 * Finished cells travel with the committed results: every row of
 * results/<name>/summary.json names the cache key of its cell (`cell`), and
 * curves.json holds its curve, so a fresh clone, or another machine, puts the
 * rows that results/ already holds back into its cell cache before a run. A
 * table then regathers (`repro --cached`) or resumes (`repro --only …`)
 * without recomputing any cell it stores; cells of changed settings have other
 * keys and are computed anew.
 *
 * @module
 */
import { CACHE_VERSION, cacheRoot, readJson, writeJson } from "./cache.ts";
import type { Row, Summary } from "./rows.ts";

/** The shape of results/<name>/curves.json. */
interface StoredCurves {
  curves: { defense: string; attack: string; seed: number; points: Row["curve"] }[];
}

/** A stored summary or curves file that cannot be read as one; names the file and what is wrong. */
export class ArchiveError extends Error {
  /** "ArchiveError". */
  override name = "ArchiveError";
}

const KEY = /^attack\/[0-9a-f]{16}$/;

/** What {@linkcode restoreCells} did. */
export interface RestoreReport {
  /** Cells written into the cache. */
  restored: number;
  /** Cells the cache already held. */
  present: number;
  /** Rows left out, each with why (no key and no way to derive one, no curve). */
  skipped: string[];
}

async function readStored<T>(path: string): Promise<T | undefined> {
  try {
    return await readJson<T>(path);
  } catch (e) {
    throw new ArchiveError(
      `${path}: not readable as JSON (${e instanceof Error ? e.message : e}); remove or restore it`,
    );
  }
}

/**
 * Puts the finished cells stored in `resultsDir` (summary.json and curves.json) into the cell cache, where the
 * cache lacks them. A row without a `cell` key (written before keys were recorded) is keyed by `keyOf` (the
 * runner's key for that defense, attack and seed under the current config) only when the stored summary was
 * written for exactly the current config (`configHash`) and cache version; otherwise it is skipped. Nothing is
 * written outside the cache: a key must be `attack/` and 16 hex digits.
 *
 * @example
 * ```ts ignore
 * const report = await restoreCells("results/mnist_threat_model", loaded.hash, () => Promise.resolve(undefined));
 * console.log(report.restored, "cells restored");
 * ```
 */
export async function restoreCells(
  resultsDir: string,
  configHash: string,
  keyOf: (row: Omit<Row, "curve">) => Promise<string | undefined>,
): Promise<RestoreReport> {
  const report: RestoreReport = { restored: 0, present: 0, skipped: [] };
  const summaryPath = `${resultsDir}/summary.json`;
  const summary = await readStored<Summary>(summaryPath);
  if (summary === undefined) return report;
  if (summary === null || typeof summary !== "object" || !Array.isArray(summary.rows) || !summary.meta) {
    throw new ArchiveError(`${summaryPath}: expected {meta, rows: [...]}; remove or restore it`);
  }
  const curvesPath = `${resultsDir}/curves.json`;
  const curves = await readStored<StoredCurves>(curvesPath);
  if (curves !== undefined && (curves === null || !Array.isArray(curves.curves))) {
    throw new ArchiveError(`${curvesPath}: expected {curves: [...]}; remove or restore it`);
  }
  const sameConfig = summary.meta.config_hash === configHash && summary.meta.cache_version === CACHE_VERSION;
  for (const [i, row] of summary.rows.entries()) {
    const where = `${summaryPath} rows[${i}]`;
    if (
      typeof row !== "object" || row === null || typeof row.defense !== "string" || typeof row.attack !== "string" ||
      !Number.isInteger(row.seed) || typeof row.queries !== "number"
    ) {
      throw new ArchiveError(`${where}: expected a row with defense, attack, seed and queries`);
    }
    if (row.attack === "none") continue; // a defense-only row: no attack cell to restore
    const name = `${row.defense}/${row.attack} seed ${row.seed}`;
    if (row.cell !== undefined && (typeof row.cell !== "string" || !KEY.test(row.cell))) {
      throw new ArchiveError(`${where}: cell ${JSON.stringify(row.cell)} is not a cache key (attack/<16 hex digits>)`);
    }
    const key = row.cell ?? (sameConfig ? await keyOf(row) : undefined);
    if (key === undefined) {
      report.skipped.push(`${name}: no cell key, and the summary is not of the current config`);
      continue;
    }
    const points = curves?.curves.find((c) =>
      c.defense === row.defense && c.attack === row.attack && c.seed === row.seed
    )
      ?.points;
    if (!Array.isArray(points)) {
      report.skipped.push(`${name}: no curve in ${curvesPath}`);
      continue;
    }
    const path = `${cacheRoot()}/${key}/row.json`;
    if (await readJson(path) !== undefined) {
      report.present++;
      continue;
    }
    const { cell: _cell, ...stored } = row;
    await writeJson(path, { ...stored, curve: points });
    report.restored++;
  }
  return report;
}
