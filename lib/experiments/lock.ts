/**
 * Cell locks: a file beside a cell's directory in the (possibly shared) cache
 * directory, created exclusively by the worker that computes the cell, so two
 * workers (local processes, or Slurm array tasks on different nodes sharing
 * the cache over a network file system) never compute the same cell. The
 * holder refreshes the file's modification time while it works (a heartbeat);
 * a lock is stale, and taken over, when its holder's process is gone (same
 * host) or its heartbeat is older than `staleMs` (any host).
 *
 * @example
 * ```ts ignore
 * import { withLock } from "./lock.ts";
 * await withLock(`${dir}.lock`, async () => {
 *   // re-check the cache, then compute the cell
 * });
 * ```
 *
 * @module
 */

/** What a lock file holds. */
export interface LockInfo {
  /** Host of the holder. */
  host: string;
  /** Process id of the holder. */
  pid: number;
  /** Unique token of this acquisition. */
  token: string;
  /** When it was acquired (ISO time). */
  since: string;
}

/** Options of {@linkcode acquireLock} and {@linkcode withLock}. */
export interface LockOptions {
  /** A heartbeat older than this makes the lock stale (default `$MECO_LOCK_STALE_S` seconds, else 600 s). */
  staleMs?: number;
  /** How often the holder refreshes its heartbeat (default a quarter of `staleMs`, at most 30 s). */
  heartbeatMs?: number;
  /** How often a waiting worker looks again (default 1000 ms). */
  pollMs?: number;
  /** Give up after waiting this long (default: wait for ever). */
  timeoutMs?: number;
  /** Told once when the lock is held by another worker, and when a stale lock is taken over. */
  log?: (msg: string) => void;
}

/** A held lock. */
export interface HeldLock {
  /** The lock file. */
  path: string;
  /** What this holder wrote into it. */
  info: LockInfo;
  /** Stops the heartbeat and removes the lock file (only if it is still this holder's). */
  release: () => Promise<void>;
}

/** Waiting for a lock took longer than `timeoutMs`. */
export class LockTimeoutError extends Error {
  /**
   * @param path the lock file
   * @param holder what the lock file held when the wait ended
   */
  constructor(readonly path: string, readonly holder: LockInfo | undefined) {
    super(`timed out waiting for the lock ${path}${holder ? ` (held by ${describe(holder)})` : ""}`);
    this.name = "LockTimeoutError";
  }
}

function describe(info: LockInfo): string {
  return `pid ${info.pid} on ${info.host} since ${info.since}`;
}

function defaultStaleMs(): number {
  const s = Number(Deno.env.get("MECO_LOCK_STALE_S") ?? "");
  return Number.isFinite(s) && s > 0 ? s * 1000 : 600_000;
}

/** Whether process `pid` exists on this host. */
function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

async function readLock(path: string): Promise<{ info?: LockInfo; mtime?: Date } | undefined> {
  try {
    const [text, st] = await Promise.all([Deno.readTextFile(path), Deno.stat(path)]);
    try {
      return { info: JSON.parse(text) as LockInfo, mtime: st.mtime ?? undefined };
    } catch {
      // Being written by its creator (created, not yet filled): judged by its age only.
      return { mtime: st.mtime ?? undefined };
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/** Why the lock at `path` (as read) is stale, or undefined while its holder is alive. */
function staleness(found: { info?: LockInfo; mtime?: Date }, staleMs: number): string | undefined {
  const host = Deno.hostname();
  if (found.info !== undefined && found.info.host === host && found.info.pid !== Deno.pid) {
    if (!processAlive(found.info.pid)) return `its holder (${describe(found.info)}) is gone`;
  }
  const age = found.mtime ? Date.now() - found.mtime.getTime() : 0;
  if (age > staleMs) return `its heartbeat is ${(age / 1000).toFixed(0)} s old`;
  return undefined;
}

async function tryCreate(path: string, info: LockInfo): Promise<boolean> {
  try {
    const f = await Deno.open(path, { write: true, createNew: true });
    try {
      await f.write(new TextEncoder().encode(JSON.stringify(info) + "\n"));
    } finally {
      f.close();
    }
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return false;
    throw e;
  }
}

/**
 * Moves a stale lock aside, unless another worker replaced it meanwhile (then
 * it is put back).
 */
async function takeOver(path: string, judged: LockInfo | undefined): Promise<void> {
  const aside = `${path}.stale-${crypto.randomUUID()}`;
  try {
    await Deno.rename(path, aside);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return; // another waiter took it first
    throw e;
  }
  const moved = await readLock(aside);
  if (judged !== undefined && moved?.info?.token !== judged.token) {
    // A fresh lock of another worker was moved: restore it (a link fails if a newer one exists).
    try {
      await Deno.link(aside, path);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
  }
  await Deno.remove(aside).catch(() => {});
}

/**
 * Acquires the lock file `path` (its folder is created), waiting while another
 * live worker holds it and taking over a stale one.
 *
 * @throws {LockTimeoutError} when `timeoutMs` passes first
 */
export async function acquireLock(path: string, opts: LockOptions = {}): Promise<HeldLock> {
  const staleMs = opts.staleMs ?? defaultStaleMs();
  const heartbeatMs = opts.heartbeatMs ?? Math.min(30_000, staleMs / 4);
  const pollMs = opts.pollMs ?? 1000;
  const t0 = Date.now();
  const info: LockInfo = {
    host: Deno.hostname(),
    pid: Deno.pid,
    token: crypto.randomUUID(),
    since: new Date().toISOString(),
  };
  await Deno.mkdir(path.replace(/\/[^/]*$/, ""), { recursive: true });
  let toldWaiting = false;
  while (!(await tryCreate(path, info))) {
    const found = await readLock(path);
    if (found === undefined) continue; // released meanwhile
    const why = staleness(found, staleMs);
    if (why !== undefined) {
      opts.log?.(`taking over the stale lock ${path}: ${why}`);
      await takeOver(path, found.info);
      continue;
    }
    if (opts.timeoutMs !== undefined && Date.now() - t0 > opts.timeoutMs) throw new LockTimeoutError(path, found.info);
    if (!toldWaiting && found.info !== undefined) {
      opts.log?.(`waiting for ${path}: held by ${describe(found.info)}`);
      toldWaiting = true;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  const timer = setInterval(() => {
    const now = new Date();
    Deno.utime(path, now, now).catch(() => {});
  }, heartbeatMs);
  Deno.unrefTimer(timer);
  let released = false;
  return {
    path,
    info,
    release: async () => {
      if (released) return;
      released = true;
      clearInterval(timer);
      const found = await readLock(path);
      if (found?.info?.token === info.token) await Deno.remove(path).catch(() => {});
    },
  };
}

/** Runs `fn` holding the lock file `path` (see {@linkcode acquireLock}); the lock is released however `fn` ends. */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const lock = await acquireLock(path, opts);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
