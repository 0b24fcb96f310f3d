/**
 * Progress of a run as it goes: a bar on the terminal, a live display in a
 * notebook (the Deno Jupyter kernel's `Deno.jupyter.display` with a
 * `display_id` that is updated in place), or plain lines in a log.
 *
 * The runner reports every task (defensive training in steps, an attack in
 * queries) to a {@linkcode ProgressSink}; the sinks only format and throttle.
 *
 * @module
 */

/** One task's state: e.g. an attack at 150000/300000 queries with the clone at 83%. */
export interface TaskProgress {
  /** What runs, e.g. "meco/dfme seed 0". */
  label: string;
  /** Unit of `done`/`total`, e.g. "queries" or "steps". */
  unit: string;
  /** Units done (over all sessions: a resumed attack starts at its checkpoint's count). */
  done: number;
  /** Units in all. */
  total: number;
  /** Units already done when this invocation started (excluded from the rate behind the ETA). */
  resumedFrom: number;
  /** Milliseconds this invocation has spent on the task. */
  sessionMs: number;
  /** The clone's latest accuracy (a fraction), when an attack has evaluated it. */
  cloneAcc?: number;
}

/** Where the runner reports progress. */
export interface ProgressSink {
  /** A task moved on (called often; sinks throttle). */
  update(p: TaskProgress): void | Promise<void>;
  /** A task finished (`p.done` is final); `note` sums it up. */
  end(p: TaskProgress, note: string): void | Promise<void>;
}

/**
 * Seconds left at this invocation's rate, or undefined before any measurable
 * progress in this invocation.
 *
 * @example
 * ```ts
 * import { etaSeconds } from "./progress.ts";
 * etaSeconds({ label: "x", unit: "queries", done: 300, total: 1000, resumedFrom: 100, sessionMs: 10_000 }); // 35
 * ```
 */
export function etaSeconds(p: TaskProgress): number | undefined {
  const ran = p.done - p.resumedFrom;
  if (ran <= 0 || p.sessionMs <= 0) return undefined;
  return Math.max(0, p.total - p.done) / (ran / (p.sessionMs / 1000));
}

/** "1h02m", "4m05s", "12s", or "?" when unknown. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** A text bar of `width` cells, e.g. "[#####.....]". */
export function bar(fraction: number, width = 24): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const n = Math.round(f * width);
  return `[${"#".repeat(n)}${".".repeat(width - n)}]`;
}

/** One line: label, bar, count, clone accuracy so far, ETA. */
export function progressLine(p: TaskProgress): string {
  const frac = p.total > 0 ? p.done / p.total : 0;
  const acc = p.cloneAcc === undefined ? "" : `  clone acc ${(100 * p.cloneAcc).toFixed(2)}%`;
  return `${p.label} ${bar(frac)} ${p.done}/${p.total} ${p.unit} (${(100 * frac).toFixed(0)}%)${acc}  ETA ${
    formatDuration(etaSeconds(p))
  }`;
}

/**
 * Plain progress lines through `log`: one when the clone accuracy changes
 * (an evaluation) and otherwise at most every `everyMs`; for logs and CI.
 */
export function lineProgress(log: (m: string) => void, everyMs = 30_000): ProgressSink {
  const last = new Map<string, { at: number; acc?: number }>();
  return {
    update(p) {
      const now = performance.now();
      const prev = last.get(p.label);
      if (prev === undefined || p.cloneAcc !== prev.acc || now - prev.at >= everyMs) {
        last.set(p.label, { at: now, acc: p.cloneAcc });
        log(progressLine(p));
      }
    },
    end(p, note) {
      last.delete(p.label);
      log(`${p.label}: ${note}`);
    },
  };
}

/**
 * A bar redrawn in place on a terminal (`\r`, at most every `everyMs`),
 * ending with a newline and `note`.
 */
export function terminalProgress(
  write: (s: string) => void = (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)),
  everyMs = 250,
): ProgressSink {
  let at = 0;
  let width = 0;
  const draw = (line: string) => {
    write(`\r${line.padEnd(width)}`);
    width = line.length;
  };
  return {
    update(p) {
      const now = performance.now();
      if (now - at < everyMs) return;
      at = now;
      draw(progressLine(p));
    },
    end(p, note) {
      draw(progressLine(p));
      write(`\n${p.label}: ${note}\n`);
      width = 0;
      at = 0;
    },
  };
}

/** The part of `Deno.jupyter` used here. */
interface JupyterDisplay {
  display(obj: unknown, options?: { raw?: boolean; update?: boolean; display_id?: string }): Promise<void>;
}

/** `Deno.jupyter` inside the Deno Jupyter kernel, else undefined (outside, merely reading it throws). */
export function jupyterKernel(): JupyterDisplay | undefined {
  try {
    const j = (Deno as unknown as { jupyter?: JupyterDisplay }).jupyter;
    return typeof j?.display === "function" ? j : undefined;
  } catch {
    return undefined;
  }
}

function escapeHtml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** The notebook's view of a task: an HTML progress bar and the same line as text. */
export function progressBundle(p: TaskProgress, note?: string): Record<string, string> {
  const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
  const acc = p.cloneAcc === undefined ? "" : ` · clone acc <b>${(100 * p.cloneAcc).toFixed(2)}%</b>`;
  const tail = note === undefined ? ` · ETA ${formatDuration(etaSeconds(p))}` : ` · ${escapeHtml(note)}`;
  return {
    "text/html": `<div style="font:13px monospace"><progress value="${frac.toFixed(4)}" max="1" ` +
      `style="width:240px;vertical-align:middle"></progress> ${escapeHtml(p.label)}: ${p.done}/${p.total} ` +
      `${escapeHtml(p.unit)}${acc}${tail}</div>`,
    "text/plain": note === undefined ? progressLine(p) : `${p.label}: ${note}`,
  };
}

/**
 * A live display per task in a notebook: shown once, then updated in place
 * (at most every `everyMs`) through the kernel's `display_id` updates.
 */
export function notebookProgress(kernel: JupyterDisplay, everyMs = 1000): ProgressSink {
  const run = crypto.randomUUID().slice(0, 8);
  const shown = new Map<string, { id: string; at: number; acc?: number }>();
  const show = async (p: TaskProgress, note?: string) => {
    let s = shown.get(p.label);
    const update = s !== undefined;
    if (s === undefined) {
      s = { id: `meco-progress-${run}-${shown.size}`, at: 0 };
      shown.set(p.label, s);
    }
    s.at = performance.now();
    s.acc = p.cloneAcc;
    await kernel.display(progressBundle(p, note), { raw: true, update, display_id: s.id });
  };
  return {
    async update(p) {
      const s = shown.get(p.label);
      if (s !== undefined && s.acc === p.cloneAcc && performance.now() - s.at < everyMs) return;
      await show(p);
    },
    async end(p, note) {
      await show(p, note);
    },
  };
}

/**
 * The sink for this process: a live display inside the Deno Jupyter kernel,
 * a bar redrawn in place on a terminal, plain lines through `log` otherwise.
 */
export function defaultProgress(log: (m: string) => void): ProgressSink {
  const kernel = jupyterKernel();
  if (kernel !== undefined) return notebookProgress(kernel);
  if (Deno.stderr.isTerminal()) return terminalProgress();
  return lineProgress(log);
}
