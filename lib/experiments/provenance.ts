/**
 * Provenance recorded with every artifact: the commit (and whether the tree
 * had uncommitted changes) and the command that produced it.
 *
 * Rows also record {@linkcode RunProvenance}: where, when and with which
 * versions each one was computed.
 *
 * @module
 */
import { version_core as tfjsVersion } from "@tensorflow/tfjs";

/** The git commit of the working tree, suffixed "+dirty" when it has uncommitted changes; "unknown" outside git. */
export async function gitCommit(): Promise<string> {
  const run = async (args: string[]) => {
    const out = await new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  };
  try {
    const head = await run(["rev-parse", "HEAD"]);
    if (head === undefined) return "unknown";
    const status = await run(["status", "--porcelain", "--untracked-files=no", "--", "lib", "configs"]);
    return status ? `${head}+dirty` : head;
  } catch {
    return "unknown";
  }
}

/** The command line of this process, as a person would retype it. */
export function commandLine(): string {
  const script = Deno.mainModule.startsWith("file://")
    ? new URL(Deno.mainModule).pathname.replace(Deno.cwd() + "/", "")
    : Deno.mainModule;
  return ["deno run -A", script, ...Deno.args].join(" ");
}

/** Where and how one result row was computed: what a reader needs to rerun it or to explain a difference. */
export interface RunProvenance {
  /** {@linkcode gitCommit} of the code that computed it. */
  commit: string;
  /** The command that computed it (a sweep's worker records the sweep's command). */
  command: string;
  /** When it was finished (ISO time). */
  date: string;
  /** The tfjs backend (wasm, cpu, tensorflow, webgpu). */
  backend: string;
  /** oneDNN's version when the native kernels ran, else null. */
  onednn: string | null;
  /** The instruction set oneDNN's kernels used (e.g. avx512_core_vnni, avx2), else null. */
  onednn_isa: string | null;
  /** Deno's version. */
  deno: string;
  /** tfjs-core's version. */
  tfjs: string;
  /** The CPU's model name (/proc/cpuinfo), or the architecture where that is not readable. */
  cpu: string;
  /** Logical CPUs. */
  cpus: number;
  /** Load average over 1, 5 and 15 minutes when it was finished (contention slows a run; results do not change). */
  load: number[];
}

/** The parts of {@linkcode RunProvenance} one process keeps (all but the date and the load). */
export type ProcessProvenance = Omit<RunProvenance, "date" | "load">;

let cpuModel: string | undefined;

/** The CPU's model name from /proc/cpuinfo, or the architecture where that is not readable. */
export function cpuName(): string {
  if (cpuModel === undefined) {
    try {
      const line = Deno.readTextFileSync("/proc/cpuinfo").split("\n").find((l) => l.startsWith("model name"));
      cpuModel = line?.split(":").slice(1).join(":").trim() || Deno.build.arch;
    } catch {
      cpuModel = Deno.build.arch;
    }
  }
  return cpuModel;
}

/**
 * What this process records with every row it computes: the commit, the command, the backend and the versions.
 * `native` is what the oneDNN kernels reported (undefined or not ok: none ran).
 */
export async function processProvenance(
  backend: string,
  native: { ok: boolean; version?: string; isa?: string } | undefined,
  command?: string,
): Promise<ProcessProvenance> {
  const useNative = backend === "wasm" && native?.ok === true;
  return {
    commit: await gitCommit(),
    command: command ?? commandLine(),
    backend,
    onednn: useNative ? native.version ?? null : null,
    onednn_isa: useNative ? native.isa ?? null : null,
    deno: Deno.version.deno,
    tfjs: tfjsVersion,
    cpu: cpuName(),
    cpus: navigator.hardwareConcurrency ?? 1,
  };
}

/** `p` stamped with the date and the machine's load now. */
export function stamp(p: ProcessProvenance): RunProvenance {
  let load: number[] = [];
  try {
    load = Deno.loadavg().map((x) => Math.round(x * 100) / 100);
  } catch {
    // no --allow-sys: the load stays unknown
  }
  return { ...p, date: new Date().toISOString(), load };
}

/** The fields of {@linkcode RunProvenance} whose values differ between runs, when they do (date and load never). */
export const COMPARED_FIELDS = ["commit", "backend", "onednn", "onednn_isa", "deno", "tfjs", "cpu", "cpus"] as const;

/** What {@linkcode summariseProvenance} says of a summary's rows. */
export interface ProvenanceSummary {
  /** Distinct invocations (commit and command) behind the rows. */
  runs: number;
  /** Rows computed before provenance was recorded. */
  rows_without: number;
  /** Per compared field, the distinct values over the rows. */
  values: Partial<Record<(typeof COMPARED_FIELDS)[number], (string | number | null)[]>>;
  /** The compared fields on which the rows' runs disagree (empty: every row from the same code and machine kind). */
  disagree: string[];
  /** The first and last dates of the rows' runs. */
  dates: [string, string] | null;
}

/** Summarises the rows' provenance for a summary's meta, naming the fields on which their runs disagree. */
export function summariseProvenance(rows: { provenance?: RunProvenance }[]): ProvenanceSummary {
  const known = rows.map((r) => r.provenance).filter((p): p is RunProvenance => p !== undefined);
  const values: ProvenanceSummary["values"] = {};
  const disagree: string[] = [];
  for (const f of COMPARED_FIELDS) {
    const distinct = [...new Set(known.map((p) => p[f]))];
    values[f] = distinct;
    if (distinct.length > 1) disagree.push(f);
  }
  const dates = known.map((p) => p.date).sort();
  return {
    runs: new Set(known.map((p) => `${p.commit} ${p.command}`)).size,
    rows_without: rows.length - known.length,
    values,
    disagree,
    dates: dates.length > 0 ? [dates[0], dates[dates.length - 1]] : null,
  };
}

let current: ProcessProvenance | undefined;

/**
 * Sets what this process records with the rows and cells it computes ({@linkcode processProvenance}); the runner
 * calls it once its backend is up.
 */
export async function recordProcessProvenance(
  backend: string,
  native: { ok: boolean; version?: string; isa?: string } | undefined,
  command?: string,
): Promise<ProcessProvenance> {
  current = await processProvenance(backend, native, command);
  return current;
}

/** This process's provenance stamped now, or undefined before {@linkcode recordProcessProvenance} ran. */
export function provenanceNow(): RunProvenance | undefined {
  return current === undefined ? undefined : stamp(current);
}
