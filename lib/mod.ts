/**
 * The MeCo workbench's front door: what a notebook or a script needs to load
 * an experiment's config, run it (or reuse its cached cells), and show its
 * tables, verdicts and figures; the backends, data, models, training,
 * defenses, attacks and the query-counting black box they run on. Import map
 * alias: `@meco/` is `lib/` (deno.json), so `import { … } from "@meco/mod.ts"`.
 *
 * @example
 * ```ts
 * import { initBackend, loadConfig } from "./mod.ts";
 * const { reason } = await initBackend();
 * const loaded = await loadConfig("configs/mnist_dfme.yaml", "smoke");
 * console.log(reason, loaded.config.name, loaded.hash.slice(0, 12));
 * ```
 *
 * @module
 */
export {
  BACKEND_NAMES,
  BackendError,
  type BackendName,
  type BackendReport,
  initBackend,
  type LogitsLoss,
} from "./backend/mod.ts";
export * from "./config/mod.ts";
export * from "./data/mod.ts";
export { buildClassifier, CLASSIFIERS, type ClassifierSpec } from "./models/registry.ts";
export { fit, type FitOptions, type FitResult } from "./train/fit.ts";
export { makeTrainer, type Trainer } from "./train/trainer.ts";
export { type NamedTensor, type OptimizerOptions, TorchAdam } from "./train/optim.ts";
export { type TrainingLoss } from "./train/losses.ts";
export { chainForward, type ChainGrads, chainGrads, modelSegments, type Piece } from "./train/recompute.ts";
export * from "./defenses/mod.ts";
export * from "./victim/mod.ts";
export * from "./attacks/mod.ts";
export {
  attacksAgainst,
  type CellFilter,
  type CellRunOptions,
  NothingCachedError,
  parseOnly,
  type Row,
  rowsPerSeed,
  runCell,
  runExperiment,
  type RunOptions,
  type Summary,
} from "./experiments/runner.ts";
export {
  type Ensured,
  type EnsureOptions,
  ensureResults,
  estimateMinutes,
  type Pending,
} from "./experiments/ensure.ts";
export { REPO_ROOT, repoPath, resultsDirFor } from "./experiments/paths.ts";
export { type Log } from "./experiments/cells.ts";
export { type ProgressSink, type TaskProgress } from "./experiments/progress.ts";
export { COMPARED_FIELDS, type ProvenanceSummary, type RunProvenance } from "./experiments/provenance.ts";
export {
  type CellOutcome as SweepCellOutcome,
  runSweep,
  type SchedulerName,
  SCHEDULERS,
  type SlurmOptions,
  type SweepCell,
  type SweepOptions,
  type SweepResult,
} from "./experiments/sweep.ts";
export { type CostReps, type DefenseCost } from "./bench/defense_cost.ts";
export { type TrainingCost } from "./bench/training_cost.ts";
export {
  type CostOptions,
  type CostRow,
  type CostSummary,
  type EnsureCostOptions,
  ensureCostResults,
  type EnsuredCost,
  runDefenseCost,
} from "./bench/cost_report.ts";
export * from "./report/mod.ts";
