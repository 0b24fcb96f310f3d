/**
 * The shared-memory protocol between the main thread and the oneDNN helper
 * thread (helper_thread.ts, helper_worker.ts): control words, job states and
 * the job area, in one SharedArrayBuffer.
 *
 * @module
 */

/** Indices of the int32 control words. */
export const CTL = {
  /** 0 starting, 1 ready, -1 failed to start. */
  ready: 0,
  /** Bumped by the main thread for every job it posts (the helper waits on it). */
  seq: 1,
  /** A {@linkcode STATE} value. */
  state: 2,
  /** oneDNN status of the last job the helper ran. */
  status: 3,
  words: 16,
} as const;

/** Job states. Whoever moves `posted` to `helper` or `main` (compare-and-exchange) runs the job. */
export const STATE = { idle: 0, posted: 1, helper: 2, done: 3, main: 4 } as const;

/** Byte offset of the job area (int64 slots). */
export const JOB_OFFSET = 64;
/** Int64 slots of the job area. */
export const JOB_SLOTS = 512;
