/**
 * Sweeps: the (config, seed) cells of an experiment that are not cached yet,
 * dispatched to N local worker processes or to Slurm as one job array (one
 * array task per cell), waited for with progress per cell, and the summary
 * then written from the cache exactly as `deno task repro` writes it.
 *
 * The cache directory is the only coordination: every worker (a local
 * process, or an array task on any node that shares the cache directory)
 * runs {@linkcode runCell} for its cell, which loads cached parts, resumes an
 * attack from its checkpoint, and takes a lock per cache cell (see lock.ts),
 * so two workers never compute the same cell. A sweep's folder (manifest,
 * job script, one log per cell) lives in the cache directory too, under
 * `sweeps/`.
 *
 * @example
 * ```ts ignore
 * import { runSweep } from "./sweep.ts";
 * const r = await runSweep({ config: "configs/mnist_dfme.yaml", profile: "smoke", seeds: [0, 1], scheduler: "local" });
 * if (r.failed.length > 0) console.log(r.failed.map((f) => f.log));
 * ```
 *
 * @module
 */
import { loadConfig, type LoadedConfig, type ProfileName, type SchedulerConfig } from "../config/mod.ts";
import { cacheRoot, readJson, writeJson } from "./cache.ts";
import type { Log } from "./cells.ts";
import { REPO_ROOT, resultsDirFor } from "./paths.ts";
import { commandLine } from "./provenance.ts";
import { cellCached, restoreStoredCells, runExperiment, type Summary } from "./runner.ts";

/** The schedulers a sweep dispatches to. */
export const SCHEDULERS = ["local", "slurm"] as const;

/** A scheduler's name. */
export type SchedulerName = typeof SCHEDULERS[number];

/** One cell of a sweep: its position (the Slurm array index) and its seed. */
export interface SweepCell {
  /** Position in the manifest; the array task index under Slurm. */
  index: number;
  /** The seed. */
  seed: number;
}

/** What a sweep's workers read: which config, at which profile and overrides, and which cells. */
export interface SweepManifest {
  /** Absolute path of the config file. */
  config: string;
  /** Its profile. */
  profile: ProfileName;
  /** `--set` overrides (including the sweep's seeds where they extend the profile's). */
  overrides: string[];
  /** The loaded config's hash: a worker refuses to run a config changed since submission. */
  config_hash: string;
  /** The cells to compute. */
  cells: SweepCell[];
  /** The cache directory the workers use (absolute). */
  cache_dir: string;
  /** When the sweep was made (ISO time). */
  created: string;
  /** The sweep's command, which the workers record in their rows' provenance (absent in older manifests). */
  command?: string;
}

/** A cell's state as a sweep follows it. */
export type CellState = "pending" | "running" | "done" | "failed";

/** A change of a cell's state, or (state unchanged) its latest log line. */
export interface CellEvent {
  /** The cell. */
  cell: SweepCell;
  /** Its state. */
  state: CellState;
  /** Where the scheduler knows it (e.g. `slurm job 12_1`, `pid 4711`). */
  where?: string;
  /** A line of detail: the last line of its log, the exit code, … */
  detail?: string;
}

/** How a cell ended. */
export interface CellOutcome {
  /** The cell. */
  cell: SweepCell;
  /** True when its worker succeeded and the cell is now cached. */
  ok: boolean;
  /** The scheduler's final state (`COMPLETED`, `FAILED`, `CANCELLED`, `exit 1`, …). */
  state: string;
  /** Exit code of the worker, when known. */
  exitCode?: number;
  /** Its log file. */
  log: string;
  /** Wall seconds from dispatch to end, as the sweep saw them. */
  seconds: number;
}

/** Options for Slurm submission (each an `#SBATCH` line when given). */
export interface SlurmOptions {
  /** `--partition`. */
  partition?: string;
  /** `--gres`, e.g. `gpu:1`. */
  gres?: string;
  /** `--time`, e.g. `04:00:00`. */
  time?: string;
  /** `--cpus-per-task`. */
  cpusPerTask?: number;
  /** `--mem`, e.g. `16G`. */
  mem?: string;
  /** Further sbatch options, written as given (e.g. `--account=proj`). */
  extra?: string[];
  /** Shell lines run before the worker in each array task (e.g. `module load deno`). */
  setup?: string[];
}

/** Options of {@linkcode runSweep}. */
export interface SweepOptions {
  /** The config file. */
  config: string;
  /** Its profile (default `$MECO_PROFILE`, else local). */
  profile?: ProfileName;
  /** `--set path=value` overrides. */
  overrides?: string[];
  /** Seeds to sweep (default the profile's); seeds beyond the profile's extend the config's seeds. */
  seeds?: number[];
  /** Where the cells run. */
  scheduler: SchedulerName;
  /** Parallel local workers (default: the number of CPUs). */
  workers?: number;
  /** Slurm submission options. */
  slurm?: SlurmOptions;
  /** Where to write the summary (default that of `repro`). */
  resultsDir?: string;
  /** Command recorded in the summary's meta. */
  command?: string;
  /** Lines of the sweep's progress (default console.log). */
  log?: Log;
  /** How often Slurm is polled (default 1000 ms). */
  pollMs?: number;
  /** How often a running cell's latest log line is shown (default 15 000 ms; 0: never). */
  progressEveryMs?: number;
}

/** What {@linkcode runSweep} did. */
export interface SweepResult {
  /** The config as the sweep loaded it. */
  loaded: LoadedConfig;
  /** Every seed of the sweep and whether it was cached before it started. */
  planned: { seed: number; cached: boolean }[];
  /** How each dispatched cell ended. */
  outcomes: CellOutcome[];
  /** The cells that failed (no summary is written then). */
  failed: CellOutcome[];
  /** The summary, written when no cell failed. */
  summary?: Summary;
  /** The sweep's folder (manifest, job script, logs), when cells were dispatched. */
  dir?: string;
}

/** The worker entry point every cell runs. */
export const WORKER_SCRIPT = `${REPO_ROOT}lib/cli/sweep_cell.ts`;

function absolute(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}

/**
 * Loads the config of a sweep: at `profile` with `overrides`, its seeds
 * extended by `seeds` beyond the profile's (as `--set 'seeds=[...]'` would), so
 * that sweeping or resubmitting any subset of the same seeds gives the same
 * config and hash.
 */
export async function loadSweepConfig(
  config: string,
  profile: ProfileName | undefined,
  overrides: string[],
  seeds: number[] | undefined,
): Promise<{ loaded: LoadedConfig; overrides: string[]; seeds: number[] }> {
  let loaded = await loadConfig(config, profile, { overrides });
  const want = seeds ?? loaded.config.seeds;
  const extra = want.filter((s) => !loaded.config.seeds.includes(s));
  if (extra.length === 0) return { loaded, overrides, seeds: [...new Set(want)] };
  const all = [...loaded.config.seeds, ...new Set(extra)];
  const withSeeds = [...overrides, `seeds=[${all.join(", ")}]`];
  loaded = await loadConfig(config, loaded.profile, { overrides: withSeeds });
  return { loaded, overrides: withSeeds, seeds: [...new Set(want)] };
}

/** The worker command of cell `index` of the sweep in `dir`, as argv (Deno first). */
export function workerArgv(dir: string, index: number | "$SLURM_ARRAY_TASK_ID"): string[] {
  return [Deno.execPath(), "run", "-A", WORKER_SCRIPT, `${dir}/manifest.json`, "--index", String(index)];
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The log file of cell `index` in the sweep folder `dir`. */
export function cellLog(dir: string, index: number): string {
  return `${dir}/logs/cell-${index}.log`;
}

/**
 * The Slurm batch script of the sweep in `dir`: its `#SBATCH` lines, the setup
 * lines, and the worker of the array task's cell. The log is appended to, so
 * a resubmitted task's log follows the killed one's. `$MECO_DENO` overrides
 * the Deno binary on the nodes.
 */
export function jobScript(dir: string, name: string, opts: SlurmOptions = {}): string {
  const sb = [
    `--job-name=meco-${name}`,
    `--output=${dir}/logs/cell-%a.log`,
    "--open-mode=append",
    ...(opts.partition ? [`--partition=${opts.partition}`] : []),
    ...(opts.gres ? [`--gres=${opts.gres}`] : []),
    ...(opts.time ? [`--time=${opts.time}`] : []),
    ...(opts.cpusPerTask ? [`--cpus-per-task=${opts.cpusPerTask}`] : []),
    ...(opts.mem ? [`--mem=${opts.mem}`] : []),
    ...(opts.extra ?? []),
  ];
  const [deno, ...args] = workerArgv(dir, "$SLURM_ARRAY_TASK_ID");
  return [
    "#!/bin/bash",
    ...sb.map((o) => `#SBATCH ${o}`),
    "set -eo pipefail",
    ...(opts.setup ?? []),
    `cd ${shellQuote(REPO_ROOT)}`,
    `export MECO_CACHE_DIR=${shellQuote(absolute(cacheRoot()))}`,
    `exec "\${MECO_DENO:-${deno}}" ${args.map((a) => a.startsWith("$") ? `"${a}"` : shellQuote(a)).join(" ")}`,
    "",
  ].join("\n");
}

/** Reads the manifest of a sweep. */
export async function readManifest(path: string): Promise<SweepManifest> {
  const m = await readJson<SweepManifest>(path);
  if (m === undefined) throw new Error(`no sweep manifest at ${path}`);
  return m;
}

async function makeSweepDir(loaded: LoadedConfig, manifest: SweepManifest): Promise<string> {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "");
  const dir = `${absolute(cacheRoot())}/sweeps/${loaded.config.name}-${loaded.profile}-${stamp}-${
    crypto.randomUUID().slice(0, 6)
  }`;
  await Deno.mkdir(`${dir}/logs`, { recursive: true });
  await writeJson(`${dir}/manifest.json`, manifest);
  return dir;
}

/** The last `n` lines of a log file (empty when it does not exist). */
export async function logTail(path: string, n = 30): Promise<string> {
  try {
    const lines = (await Deno.readTextFile(path)).split("\n");
    while (lines.length > 0 && lines[lines.length - 1].trim() === "") lines.pop();
    return lines.slice(-n).join("\n");
  } catch {
    return "";
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Local workers

/** One job of {@linkcode runLocal}: a command and the log file it writes to. */
export interface LocalJob {
  /** The cell it computes. */
  cell: SweepCell;
  /** argv: the program, then its arguments. */
  argv: string[];
  /** Log file (stdout and stderr, appended). */
  log: string;
  /** Extra environment. */
  env?: Record<string, string>;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

/**
 * Runs `jobs` with at most `workers` at a time, each in its own process with
 * its output appended to its log; `onEvent` hears each start and end.
 */
export async function runLocal(
  jobs: LocalJob[],
  workers: number,
  onEvent: (e: CellEvent) => void = () => {},
): Promise<CellOutcome[]> {
  const outcomes: CellOutcome[] = new Array(jobs.length);
  let next = 0;
  const one = async (job: LocalJob): Promise<CellOutcome> => {
    const t0 = performance.now();
    await Deno.mkdir(job.log.replace(/\/[^/]*$/, ""), { recursive: true });
    const file = await Deno.open(job.log, { append: true, create: true });
    try {
      const child = new Deno.Command(job.argv[0], {
        args: job.argv.slice(1),
        env: job.env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      onEvent({ cell: job.cell, state: "running", where: `pid ${child.pid}` });
      // One writer at a time, so lines of stdout and stderr never interleave mid-chunk.
      let chain = Promise.resolve();
      const drain = async (s: ReadableStream<Uint8Array>) => {
        for await (const chunk of s) chain = chain.then(() => writeAll(file, chunk));
      };
      const [status] = await Promise.all([child.status, drain(child.stdout), drain(child.stderr)]);
      await chain;
      const ok = status.success;
      const state = status.signal ? `killed by ${status.signal}` : `exit ${status.code}`;
      onEvent({ cell: job.cell, state: ok ? "done" : "failed", detail: state });
      return {
        cell: job.cell,
        ok,
        state,
        exitCode: status.code,
        log: job.log,
        seconds: (performance.now() - t0) / 1000,
      };
    } finally {
      file.close();
    }
  };
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      outcomes[i] = await one(jobs[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(workers, jobs.length)) }, worker));
  return outcomes;
}

// ---------------------------------------------------------------------------------------------------------------
// Slurm

async function slurmCmd(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  return {
    ok: out.success,
    out: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
  };
}

/**
 * Submits `script` as a job array over `indices`; returns the array's job id.
 *
 * @throws {Error} with sbatch's message when it refuses
 */
export async function submitArray(script: string, indices: number[]): Promise<string> {
  const r = await slurmCmd("sbatch", ["--parsable", `--array=${indices.join(",")}`, script]);
  const id = r.out.trim().split(";")[0];
  if (!r.ok || !/^\d+$/.test(id)) throw new Error(`sbatch refused the array: ${r.out.trim()}`);
  return id;
}

/** States of the array's tasks that squeue still lists, by array index. */
export async function queuedTasks(jobId: string): Promise<Map<number, string>> {
  const r = await slurmCmd("squeue", ["-h", "-r", "-j", jobId, "-o", "%K|%T"]);
  const m = new Map<number, string>();
  if (!r.ok) {
    // A finished job is "Invalid job id" to squeue once it has left the queue.
    if (/Invalid job id/i.test(r.out)) return m;
    throw new Error(`squeue failed: ${r.out.trim()}`);
  }
  for (const line of r.out.split("\n")) {
    const [k, state] = line.trim().split("|");
    if (k !== undefined && /^\d+$/.test(k) && state) m.set(Number(k), state);
  }
  return m;
}

/** The final state and exit code of array task `jobId_index` (from `scontrol show job`); undefined when unknown. */
export async function taskEnd(jobId: string, index: number): Promise<{ state: string; exitCode: number } | undefined> {
  const r = await slurmCmd("scontrol", ["-o", "show", "job", `${jobId}_${index}`]);
  if (!r.ok) return undefined;
  const line = r.out.split("\n").find((l) => new RegExp(`ArrayTaskId=${index}(\\s|$)`).test(l)) ?? r.out;
  const state = /JobState=(\S+)/.exec(line)?.[1];
  const exit = /ExitCode=(\d+):(\d+)/.exec(line);
  if (state === undefined || exit === null) return undefined;
  return { state, exitCode: Number(exit[1]) };
}

const FINISHED = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED"]);

/**
 * Follows array `jobId`'s tasks for `cells` until each has left the queue,
 * calling `onEvent` on every change of state, and returns how each ended.
 */
export async function waitArray(
  jobId: string,
  cells: SweepCell[],
  logOf: (c: SweepCell) => string,
  opts: { pollMs?: number; onEvent?: (e: CellEvent) => void } = {},
): Promise<CellOutcome[]> {
  const pollMs = opts.pollMs ?? 1000;
  const onEvent = opts.onEvent ?? (() => {});
  const t0 = performance.now();
  const seen = new Map<number, string>();
  const ended = new Map<number, CellOutcome>();
  while (ended.size < cells.length) {
    const queued = await queuedTasks(jobId);
    for (const c of cells) {
      if (ended.has(c.index)) continue;
      const st = queued.get(c.index);
      if (st !== undefined && !FINISHED.has(st)) {
        if (seen.get(c.index) !== st) {
          seen.set(c.index, st);
          onEvent({ cell: c, state: st === "RUNNING" ? "running" : "pending", where: `slurm job ${jobId}_${c.index}` });
        }
        continue;
      }
      const end = await taskEnd(jobId, c.index);
      // Not registered yet (for a minute at most).
      if (end === undefined && st === undefined && !seen.has(c.index) && performance.now() - t0 < 60_000) continue;
      const state = end?.state ?? st ?? "UNKNOWN";
      if (!FINISHED.has(state) && state !== "UNKNOWN") continue; // squeue and scontrol a moment apart
      const ok = state === "COMPLETED" && end?.exitCode === 0;
      const o: CellOutcome = {
        cell: c,
        ok,
        state,
        exitCode: end?.exitCode,
        log: logOf(c),
        seconds: (performance.now() - t0) / 1000,
      };
      ended.set(c.index, o);
      onEvent({
        cell: c,
        state: ok ? "done" : "failed",
        where: `slurm job ${jobId}_${c.index}`,
        detail: `${state}, exit code ${end?.exitCode ?? "unknown"}`,
      });
    }
    if (ended.size < cells.length) await new Promise((r) => setTimeout(r, pollMs));
  }
  return cells.map((c) => ended.get(c.index)!);
}

// ---------------------------------------------------------------------------------------------------------------
// The sweep

function describeEvent(e: CellEvent): string {
  const where = e.where ? ` (${e.where})` : "";
  return `cell seed ${e.cell.seed}${where}: ${e.state}${e.detail ? ` — ${e.detail}` : ""}`;
}

/**
 * The sbatch options of a sweep: the config's `scheduler:` section, with each option the command gives in
 * `flags` taking its place (sbatch lines and setup lines from both, the config's first).
 */
export function slurmOptions(section: SchedulerConfig | undefined, flags: SlurmOptions = {}): SlurmOptions {
  const s = section ?? {};
  const pick = <T>(flag: T | undefined, cfg: T | undefined) => flag ?? cfg;
  const lists = (a: string[] | undefined, b: string[] | undefined) =>
    a === undefined && b === undefined ? undefined : [...(a ?? []), ...(b ?? [])];
  const out: SlurmOptions = {
    partition: pick(flags.partition, s.partition),
    gres: pick(flags.gres, s.gres),
    time: pick(flags.time, s.time),
    cpusPerTask: pick(flags.cpusPerTask, s.cpus_per_task),
    mem: pick(flags.mem, s.mem),
    extra: lists(s.sbatch, flags.extra),
    setup: lists(s.setup, flags.setup),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as SlurmOptions;
}

/**
 * Runs a sweep: loads the config, lists its cells and which are cached,
 * dispatches the others (local workers or one Slurm job array), waits with
 * progress per cell, checks each dispatched cell is now cached, and, when
 * none failed, writes the summary through the runner as `repro` does (the
 * same rows; cached cells are read, never recomputed).
 */
export async function runSweep(opts: SweepOptions): Promise<SweepResult> {
  const log = opts.log ?? ((m: string) => console.log(m));
  const { loaded, overrides, seeds } = await loadSweepConfig(
    opts.config,
    opts.profile,
    opts.overrides ?? [],
    opts.seeds,
  );
  await restoreStoredCells(loaded, opts.resultsDir ?? resultsDirFor(loaded), log);
  const planned: { seed: number; cached: boolean }[] = [];
  for (const seed of seeds) planned.push({ seed, cached: await cellCached(loaded.config, seed) });
  const cells = planned.filter((p) => !p.cached).map((p, index) => ({ index, seed: p.seed }));
  log(
    `sweep ${loaded.config.name} (profile ${loaded.profile}): ${seeds.length} cell(s), ` +
      `${seeds.length - cells.length} cached${
        planned.some((p) => p.cached) ? ` (seed ${planned.filter((p) => p.cached).map((p) => p.seed).join(", ")})` : ""
      }, ${cells.length} to run${cells.length > 0 ? ` (seed ${cells.map((c) => c.seed).join(", ")})` : ""}`,
  );
  let outcomes: CellOutcome[] = [];
  let dir: string | undefined;
  if (cells.length > 0) {
    const manifest: SweepManifest = {
      config: absolute(opts.config),
      profile: loaded.profile,
      overrides,
      config_hash: loaded.hash,
      cells,
      cache_dir: absolute(cacheRoot()),
      created: new Date().toISOString(),
      command: opts.command ?? commandLine(),
    };
    dir = await makeSweepDir(loaded, manifest);
    log(`sweep folder: ${dir}`);
    outcomes = await dispatch({ ...opts, slurm: slurmOptions(loaded.config.scheduler, opts.slurm) }, dir, cells, log);
    for (const o of outcomes) {
      const cached = await cellCached(loaded.config, o.cell.seed);
      if (o.ok && !cached) {
        o.ok = false;
        o.state += ", but the cell is not in the cache";
      } else if (o.state === "UNKNOWN" && cached) {
        o.ok = true; // the scheduler forgot the task; its cell is complete
      }
    }
  }
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.length > 0) return { loaded, planned, outcomes, failed, dir };
  const summary = await runExperiment(loaded, {
    seeds,
    resultsDir: opts.resultsDir,
    command: opts.command,
    log,
  });
  return { loaded, planned, outcomes, failed, summary, dir };
}

async function dispatch(opts: SweepOptions, dir: string, cells: SweepCell[], log: Log): Promise<CellOutcome[]> {
  const onEvent = (e: CellEvent) => log(describeEvent(e));
  const running = new Set<SweepCell>();
  const follow = (e: CellEvent) => {
    if (e.state === "running") running.add(e.cell);
    else running.delete(e.cell);
    onEvent(e);
  };
  const every = opts.progressEveryMs ?? 15_000;
  const timer = every > 0
    ? setInterval(async () => {
      for (const c of running) {
        const last = await logTail(cellLog(dir, c.index), 1);
        if (last) log(`cell seed ${c.seed}: ${last.trim()}`);
      }
    }, every)
    : undefined;
  try {
    if (opts.scheduler === "local") {
      const workers = opts.workers ?? navigator.hardwareConcurrency ?? 1;
      log(`running ${cells.length} cell(s) on ${Math.min(workers, cells.length)} local worker(s)`);
      const env = { MECO_CACHE_DIR: absolute(cacheRoot()) };
      return await runLocal(
        cells.map((c) => ({ cell: c, argv: workerArgv(dir, c.index), log: cellLog(dir, c.index), env })),
        workers,
        follow,
      );
    }
    const script = `${dir}/job.sh`;
    const name = dir.replace(/^.*\//, "").replace(/-\d{8}T\d{6}-\w+$/, "");
    await Deno.writeTextFile(script, jobScript(dir, name, opts.slurm), { mode: 0o755 });
    const jobId = await submitArray(script, cells.map((c) => c.index));
    log(`submitted Slurm job array ${jobId} (${cells.length} task(s), script ${script})`);
    return await waitArray(jobId, cells, (c) => cellLog(dir, c.index), { pollMs: opts.pollMs, onEvent: follow });
  } finally {
    if (timer !== undefined) clearInterval(timer);
  }
}
