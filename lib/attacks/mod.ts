/**
 * `lib/attacks`: model-extraction attacks behind one interface,
 * {@linkcode Attack}: `extract(blackBox, budget, ctx)` sees only a
 * `BlackBox` (which counts every query) and returns a clone with its
 * learning curve. Attacks checkpoint to `ctx.checkpointDir` and resume from
 * it; the runner gives the resumed run's black box the queries the checkpoint
 * spent ({@linkcode checkpointQueries}).
 *
 * - {@linkcode DfmeAttack}: DFME (Truong et al., CVPR 2021), its iteration
 *   {@linkcode dfmeIteration} as a plain function; with `label: hard`, the
 *   hard-label-only DFME of the MeCo paper's Table 5.
 * - {@linkcode MazeAttack}: MAZE (Kariyappa et al., CVPR 2021).
 * - {@linkcode DfmsHlAttack}: DFMS-HL (Sanyal et al., CVPR 2022), decision-based.
 * - {@linkcode AdaptiveAttack}: the MeCo paper's adaptive attacker (Table 4).
 * - {@linkcode KnockoffAttack}: Knockoff Nets (Orekondy et al., CVPR 2019),
 *   random and adaptive (gradient-bandit) sampling of a surrogate set.
 * - {@linkcode JbdaAttack}: Jacobian-based dataset augmentation (Papernot et
 *   al., AsiaCCS 2017) from a small seed set.
 *
 * DFME, MAZE, DFMS-HL and the adaptive attacker share one driver, {@linkcode runAttackLoop}, and its
 * checkpoint format ({@linkcode LoopCheckpointMeta}).
 *
 * @example
 * ```ts ignore
 * import { checkpointQueries, DfmeAttack } from "./mod.ts";
 * import { undefended } from "../defenses/mod.ts";
 * import { BlackBox } from "../victim/mod.ts";
 * const spent = await checkpointQueries(dir);
 * const bb = new BlackBox(undefended(victim), { imageShape: [28, 28, 1], numClasses: 10, budget, spent });
 * const { clone, curve } = await new DfmeAttack(config).extract(bb, budget, { seed, evaluate, checkpointDir: dir });
 * ```
 *
 * @module
 */
export type { Attack, AttackContext, AttackProgress, AttackResult, CurvePoint } from "./attack.ts";
export {
  type CheckpointMeta,
  checkpointQueries,
  commitCheckpoint,
  latestCheckpoint,
  loadOptimizerState,
  readCheckpointMeta,
  ResumeError,
  saveOptimizerState,
} from "./checkpoint.ts";
export { type CloneArch, type CloneFactory, cloneFactory, UnknownCloneArchError } from "./clone.ts";
export {
  createDfmeState,
  DEFAULT_HARD_LABEL_GAP,
  DFME_FORMAT,
  DfmeAttack,
  type DfmeConfigInput,
  dfmeIteration,
  type DfmeIterationStats,
  type DfmeModelOptions,
  dfmeQueriesPerIteration,
  DfmeRun,
  type DfmeSettings,
  dfmeSettings,
  type DfmeState,
  type DfmeStateOptions,
  disposeDfmeState,
  type QueryTransform,
  restoreDfmeState,
  saveDfmeState,
  victimTarget,
  zerothOrderGradient,
} from "./dfme.ts";
export {
  AdaptiveAttack,
  type AdaptiveConfigInput,
  AdaptiveRun,
  type AdaptiveSettings,
  adaptiveSettings,
  perturbQueries,
} from "./adaptive.ts";
export {
  DfmsHlAttack,
  type DfmsHlConfigInput,
  dfmsHlQueriesPerIteration,
  DfmsHlRun,
  type DfmsHlSettings,
  dfmsHlSettings,
  proxyImages,
} from "./dfms_hl.ts";
export {
  copyWeightsFrom,
  type IterativeRun,
  type LoopCheckpointMeta,
  type LoopOptions,
  runAttackLoop,
} from "./loop.ts";
export {
  MazeAttack,
  type MazeConfigInput,
  mazeQueriesPerIteration,
  MazeRun,
  type MazeSettings,
  mazeSettings,
} from "./maze.ts";
export { ReplayBuffer } from "./replay_buffer.ts";
export {
  type BanditState,
  certaintyReward,
  GradientBandit,
  KnockoffRewards,
  lossReward,
  normalise,
  type RewardKind,
  type RewardsState,
  type RunningStats,
} from "./bandit.ts";
export {
  checkPool,
  KnockoffAttack,
  type KnockoffCheckpointMeta,
  type KnockoffConfigInput,
  type KnockoffOptions,
  type KnockoffSettings,
  knockoffSettings,
  SurrogateError,
} from "./knockoff.ts";
export {
  jacobianAugment,
  JbdaAttack,
  type JbdaCheckpointMeta,
  type JbdaConfigInput,
  type JbdaOptions,
  jbdaQueries,
  type JbdaSettings,
  jbdaSettings,
} from "./jbda.ts";
export { loadTransferSet, saveTransferSet } from "./transfer_checkpoint.ts";
export { queryTargets, trainEpoch, TransferSet } from "./transfer_set.ts";
