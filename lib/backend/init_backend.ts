/**
 * Backend selection: tensorflow (tfjs-node-gpu, then tfjs-node) → webgpu (a
 * real, non-fallback adapter only) → wasm (with this project's training
 * kernels) → cpu.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { registerWasmTrainingKernels } from "./wasm_kernels/register.ts";
import { registerNativeKernels } from "./native/mod.ts";

/** Backends the workbench can run on. */
export const BACKEND_NAMES = ["tensorflow", "webgpu", "wasm", "cpu"] as const;
/** One of {@linkcode BACKEND_NAMES}. */
export type BackendName = typeof BACKEND_NAMES[number];

/** What {@linkcode initBackend} picked, and why. */
export interface BackendReport {
  /** The backend now active in tfjs. */
  name: BackendName;
  /** Where the choice came from. */
  source: "env MECO_BACKEND" | "argument" | "auto";
  /** One line a person can read: the pick and the reason. */
  reason: string;
  /** Every backend tried, in order, with the reason it was or was not used. */
  tried: { name: BackendName; ok: boolean; why: string }[];
}

/** Raised when a requested backend cannot be used. */
export class BackendError extends Error {
  /**
   * An error whose message names the backend and what went wrong.
   *
   * @param backend the backend asked for
   * @param why what went wrong
   */
  constructor(readonly backend: string, why: string) {
    super(`backend '${backend}': ${why}`);
    this.name = "BackendError";
  }
}

function isBackendName(s: string): s is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(s);
}

function errText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

async function localPackage(name: string): Promise<boolean> {
  try {
    const st = await Deno.stat(new URL(`../../node_modules/${name}/package.json`, import.meta.url));
    return st.isFile;
  } catch {
    return false;
  }
}

async function tryTensorflow(explicit: boolean): Promise<string> {
  const errors: string[] = [];
  for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
    // In auto mode only packages the user has installed are tried: importing a
    // missing npm package would start a download on every run.
    if (!explicit && !(await localPackage(pkg))) {
      errors.push(`${pkg} not installed`);
      continue;
    }
    try {
      await import(`npm:${pkg}@4.22.0`);
      if (tf.findBackend("tensorflow") !== null && await tf.setBackend("tensorflow")) {
        return `${pkg} loaded`;
      }
      errors.push(`${pkg} loaded but registered no 'tensorflow' backend`);
    } catch (e) {
      errors.push(`${pkg}: ${errText(e)}`);
    }
  }
  throw new Error(errors.join("; "));
}

async function tryWebgpu(): Promise<string> {
  const gpu = (globalThis.navigator as Navigator & { gpu?: GPU }).gpu;
  if (gpu === undefined) throw new Error("navigator.gpu is absent");
  const adapter = await gpu.requestAdapter();
  if (adapter === null) throw new Error("no WebGPU adapter");
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  if (info.isFallbackAdapter) {
    throw new Error("only a software fallback adapter (e.g. llvmpipe): slower than wasm");
  }
  await import("@tensorflow/tfjs-backend-webgpu");
  if (!(await tf.setBackend("webgpu"))) throw new Error("tfjs webgpu backend failed to initialise");
  return `adapter ${info.vendor || "?"} ${info.architecture || ""}`.trim();
}

async function tryWasm(): Promise<string> {
  await import("@tensorflow/tfjs-backend-wasm");
  registerWasmTrainingKernels();
  const native = registerNativeKernels();
  if (!(await tf.setBackend("wasm"))) throw new Error("tfjs wasm backend failed to initialise");
  const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
  return `XNNPACK${simd ? " + SIMD" : ""}, with this project's training kernels` +
    (native.ok ? `, ${native.reason} native convs/matmul` : `; no native kernels: ${native.reason}`);
}

async function tryCpu(): Promise<string> {
  if (!(await tf.setBackend("cpu"))) throw new Error("tfjs cpu backend failed to initialise");
  return "pure JavaScript reference backend (slow)";
}

const TRY: Record<BackendName, (explicit: boolean) => Promise<string>> = {
  tensorflow: tryTensorflow,
  webgpu: () => tryWebgpu(),
  wasm: () => tryWasm(),
  cpu: () => tryCpu(),
};

/**
 * Picks and activates the tfjs backend. The environment variable
 * `MECO_BACKEND` wins over `name` (which usually comes from a config); with
 * neither, or `"auto"`, the first that works of tensorflow → webgpu → wasm →
 * cpu is used. A backend asked for by name that cannot start is an error, not
 * a silent fallback.
 *
 * @example
 * ```ts
 * const report = await initBackend();
 * console.log(report.reason); // "wasm (auto): XNNPACK + SIMD, ..."
 * ```
 */
export async function initBackend(name?: BackendName | "auto"): Promise<BackendReport> {
  // tfjs prints a banner recommending tfjs-node the first time its cpu backend is used under a Node-like
  // runtime; the choice and its reason are reported here instead.
  tf.env().set("PROD", true);
  const env = Deno.env.get("MECO_BACKEND");
  let requested: string | undefined = name;
  let source: BackendReport["source"] = "argument";
  if (env !== undefined && env !== "") {
    requested = env;
    source = "env MECO_BACKEND";
  }
  if (requested === undefined || requested === "auto") {
    source = "auto";
    requested = undefined;
  }
  if (requested !== undefined && !isBackendName(requested)) {
    throw new BackendError(
      requested,
      `unknown backend (from ${source}); expected one of ${BACKEND_NAMES.join(", ")} or auto`,
    );
  }
  const order: BackendName[] = requested === undefined ? [...BACKEND_NAMES] : [requested];
  const tried: BackendReport["tried"] = [];
  for (const b of order) {
    try {
      const why = await TRY[b](requested !== undefined);
      tried.push({ name: b, ok: true, why });
      return { name: b, source, reason: `${b} (${source}): ${why}`, tried };
    } catch (e) {
      tried.push({ name: b, ok: false, why: errText(e) });
    }
  }
  const last = tried[tried.length - 1];
  throw new BackendError(
    requested ?? "auto",
    tried.map((t) => `${t.name}: ${t.why}`).join("; ") || last?.why || "nothing tried",
  );
}
