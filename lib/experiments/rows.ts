/**
 * The shapes of an experiment's results: one row per (defense, attack, seed)
 * cell and the summary the runner writes to results/<name>/summary.json.
 *
 * @module
 */
import type { ProvenanceSummary, RunProvenance } from "./provenance.ts";

/** One result row: a (defense, attack, seed) cell. */
export interface Row {
  /** Defense label ("undefended", "meco", …). */
  defense: string;
  /** Attack label, or "none" for a config without attacks. */
  attack: string;
  /** Seed of the cell. */
  seed: number;
  /** Test accuracy of the (defended) target. */
  target_acc: number;
  /** Mean L1 distance of defended from clean outputs on the test set. */
  l1: number;
  /** Final clone test accuracy (null without an attack). */
  clone_acc: number | null;
  /** Queries the attack spent. */
  queries: number;
  /** Wall minutes of the attack (all invocations). */
  minutes: number;
  /** Clone accuracy along the query budget. */
  curve: { queries: number; cloneAcc: number }[];
  /**
   * Who answered the attack's zeroth-order estimate: "real black box" (the defense; also attacks without an
   * estimate) or "official (undefended estimation)" (the official MeCo evaluation's protocol). Absent in rows
   * computed before it was recorded (they were all real black box).
   */
  protocol?: string;
  /** MeCo only: RMS per pixel of the DRO (SVGD) step's displacement in the last training epoch. */
  svgd_rms?: number;
  /** MeCo only: RMS per pixel of h's displacement in the last training epoch. */
  h_rms?: number;
  /**
   * The run that computed the row: commit, command, date, backend, oneDNN version and ISA, Deno and tfjs versions,
   * CPU and load. Absent in rows cached before it was recorded.
   */
  provenance?: RunProvenance;
  /**
   * The cache key the cell is stored under (`attack/<hash>`), with which a committed results/<name>/ restores its
   * finished cells into another machine's cache (lib/experiments/archive.ts). Absent in rows written before it was
   * recorded.
   */
  cell?: string;
}

/** What the runner writes to results/<name>/summary.json. */
export interface Summary {
  /** Provenance and settings. */
  meta: {
    name: string;
    commit: string;
    command: string;
    backend: string;
    profile: string;
    config_hash: string;
    cache_version: number;
    budget: number | null;
    seeds: number[];
    minutes: number;
    generated: string;
    /**
     * The rows' runs: how many, the distinct commits, ISAs, CPUs, … and the fields on which they disagree (absent
     * in summaries written before rows recorded their runs).
     */
    provenance?: ProvenanceSummary;
    /**
     * The config's (defense, attack, seed) cells this summary has no row of, as `defense/attack seed N` (gathered
     * with `--cached` or `--only` before every cell was computed); empty when complete, absent in summaries written
     * before it was recorded.
     */
    missing_cells?: string[];
  };
  /** One row per (defense, attack, seed). */
  rows: Omit<Row, "curve">[];
}

/** Cells (`defense/attack seed N`) grouped by label: `a/b (seeds 0, 1), c/d (seed 2)`. */
export function groupCells(cells: readonly string[]): string {
  const seeds = new Map<string, string[]>();
  for (const c of cells) {
    const m = /^(.*) seed (\d+)$/.exec(c);
    const [label, seed] = m === null ? [c, undefined] : [m[1], m[2]];
    if (!seeds.has(label)) seeds.set(label, []);
    if (seed !== undefined) seeds.get(label)!.push(seed);
  }
  return [...seeds].map(([label, s]) =>
    s.length === 0 ? label : `${label} (seed${s.length === 1 ? "" : "s"} ${s.join(", ")})`
  ).join(", ");
}
