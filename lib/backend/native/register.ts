/**
 * Registers the native (oneDNN) kernels over the tfjs wasm backend. Each
 * replaces the kernel registered before it under the same name and defers to
 * it for what it does not handle, so call this after
 * `registerWasmTrainingKernels()` and before the wasm backend initialises.
 *
 * @module
 */
import { switchedOff } from "../../system/optional_parts.ts";
import * as tf from "@tensorflow/tfjs";
import { ISA, openDnnl } from "./dnnl_ffi.ts";
import { Dnnl } from "./dnnl.ts";
import type { HelperCounts } from "./helper_thread.ts";
import { conv2DConfig, fusedConv2DConfig } from "./conv2d.ts";
import { conv2DBackpropFilterConfig, conv2DBackpropInputConfig } from "./conv2d_backprop.ts";
import { batchMatMulConfig, fusedMatMulConfig } from "./batch_mat_mul.ts";
import { castConfig, identityConfig } from "./identity.ts";
import { sliceConfig } from "./slice.ts";
import { concatConfig, splitVConfig } from "./concat.ts";
import { fusedBatchNormConfig } from "./batch_norm.ts";
import { registerBatchNormGradient } from "./batch_norm_grad.ts";
import { registerBatchNormTraining } from "./batch_norm_train.ts";
import { avgPoolGradConfig, maxPoolGradConfig } from "./pooling.ts";
import { resizeNearestNeighborConfig, resizeNearestNeighborGradConfig } from "./resize.ts";
import { leakyReluConfig, registerEltwiseGradients, relu6Config, sigmoidConfig, tanhConfig } from "./eltwise.ts";
import { addConfig, multiplyConfig, realDivConfig, subConfig } from "./binary.ts";
import { registerMeanGradient } from "./mean_grad.ts";
import { meanConfig, sumConfig } from "./reduce.ts";
import { tileConfig } from "./tile.ts";
import { runtime } from "./runtime.ts";
import { registerOptimizerKernels } from "./optimizer_update.ts";

type Factory = (prev: tf.KernelConfig) => tf.KernelConfig;

/** Kernels on oneDNN: name → factory wrapping the kernel it replaces. */
const DNNL_FACTORIES: Record<string, Factory> = {
  Conv2D: conv2DConfig,
  FusedConv2D: fusedConv2DConfig,
  Conv2DBackpropInput: conv2DBackpropInputConfig,
  Conv2DBackpropFilter: conv2DBackpropFilterConfig,
  BatchMatMul: batchMatMulConfig,
  _FusedMatMul: fusedMatMulConfig,
  Sum: sumConfig,
  Mean: meanConfig,
  FusedBatchNorm: fusedBatchNormConfig,
  Add: addConfig,
  Sub: subConfig,
  Multiply: multiplyConfig,
  RealDiv: realDivConfig,
  MaxPoolGrad: maxPoolGradConfig,
  AvgPoolGrad: avgPoolGradConfig,
  LeakyRelu: leakyReluConfig,
  Relu6: relu6Config,
  Tanh: tanhConfig,
  Sigmoid: sigmoidConfig,
  ResizeNearestNeighbor: resizeNearestNeighborConfig,
  ResizeNearestNeighborGrad: resizeNearestNeighborGradConfig,
};

/** Kernels in TypeScript on the wasm heap, registered even without oneDNN. */
const HEAP_FACTORIES: Record<string, Factory> = {
  Identity: identityConfig,
  Cast: castConfig,
  Tile: tileConfig,
  Slice: sliceConfig,
  Concat: concatConfig,
  SplitV: splitVConfig,
};

/** Names of the kernels {@linkcode registerNativeKernels} replaces. */
export const NATIVE_KERNEL_NAMES: readonly string[] = [...Object.keys(DNNL_FACTORIES), ...Object.keys(HEAP_FACTORIES)];

/** Outcome of {@linkcode registerNativeKernels}. */
export interface NativeReport {
  /** True when the oneDNN kernels are registered. */
  ok: boolean;
  /** One line: what is in use, or why not. */
  reason: string;
  /** The oneDNN library's version, when it opened. */
  version?: string;
  /** The instruction set oneDNN's kernels use (`dnnl_get_effective_cpu_isa`), when it opened. */
  isa?: string;
}

const installed = new Map<string, { mine: tf.KernelConfig; prev: tf.KernelConfig }>();
let last: NativeReport | undefined;

/** An environment variable, or undefined when unset or not readable (no --allow-env). */
function envFlag(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

function errText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/**
 * Loads oneDNN (libdnnl.so.2) through Deno FFI and registers Conv2D,
 * FusedConv2D, Conv2DBackpropInput, Conv2DBackpropFilter, BatchMatMul,
 * _FusedMatMul, Sum and Mean for the `wasm` backend on it, plus copy-free
 * Identity and memcpy Tile, Slice, Concat and SplitV kernels (which need no library). Never throws:
 * without the library or FFI permission only the latter are registered, with
 * `MECO_NATIVE=0` nothing is, and `reason` says why. Idempotent.
 *
 * @example
 * ```ts
 * await import("@tensorflow/tfjs-backend-wasm");
 * const { ok, reason } = registerNativeKernels();
 * console.log(ok, reason); // true "oneDNN 2.6.3 (avx512_core_bf16, 2 threads, GOMP_SPINCOUNT=10000, convolutions split with a helper thread)"
 * ```
 */
export function registerNativeKernels(): NativeReport {
  if (envFlag("MECO_NATIVE") === "0") return { ok: false, reason: "native kernels disabled by MECO_NATIVE=0" };
  const missing = install(HEAP_FACTORIES);
  if (missing !== undefined) return missing;
  registerMeanGradient();
  registerOptimizerKernels();
  runtime.enabled = true;
  if (last === undefined) {
    // MECO_WITHOUT=onednn: as on a machine without libdnnl2 (the kernels that need no library stay).
    const lib: ReturnType<typeof openDnnl> = switchedOff().has("onednn")
      ? { ok: false, reason: "libdnnl.so.2 switched off by MECO_WITHOUT" }
      : openDnnl();
    if (!lib.ok) {
      last = { ok: false, reason: lib.reason };
    } else {
      try {
        runtime.dnnl = new Dnnl(lib.dnnl, lib.omp);
        runtime.dnnl.debug = envFlag("MECO_NATIVE_DEBUG") === "1";
        if (envFlag("MECO_NATIVE_HELPER") !== "0") runtime.dnnl.helperPath = lib.path;
        if (envFlag("MECO_NATIVE_SPLIT") === "0") runtime.dnnl.splitBatch = false;
        const fixed = Number(envFlag("MECO_NATIVE_THREADS"));
        if (Number.isInteger(fixed) && fixed > 0) runtime.dnnl.fixedThreads = fixed;
        const isa = ISA[lib.dnnl.dnnl_get_effective_cpu_isa()] ?? "?";
        const t = runtime.dnnl.maxThreads, f = runtime.dnnl.fixedThreads;
        const threads = f === undefined ? `${t} thread${t === 1 ? "" : "s"}` : `${Math.min(f, t)} fixed threads`;
        const split = runtime.dnnl.splitInvariant
          ? ", convolutions split with a helper thread"
          : runtime.dnnl.splitReductions && runtime.dnnl.helperPath !== undefined && t > 1
          ? ", weight gradients split with a helper thread"
          : "";
        last = {
          ok: true,
          reason: `oneDNN ${lib.version} (${isa}, ${threads}, ${lib.wait}${split})`,
          version: lib.version,
          isa,
        };
      } catch (e) {
        last = { ok: false, reason: `oneDNN ${lib.version} unusable: ${errText(e)}` };
      }
    }
  }
  if (!last.ok) return last;
  const missingDnnl = install(DNNL_FACTORIES);
  if (missingDnnl !== undefined) return missingDnnl;
  registerBatchNormGradient();
  registerBatchNormTraining();
  registerEltwiseGradients();
  return last;
}

/** What {@linkcode registerNativeKernels} found when it opened oneDNN; undefined before it ran. */
export function nativeReport(): NativeReport | undefined {
  return last;
}

/** Registers each factory's kernel over the current one; a report if a kernel to wrap is missing. */
function install(factories: Record<string, Factory>): NativeReport | undefined {
  for (const [name, factory] of Object.entries(factories)) {
    const current = tf.getKernel(name, "wasm");
    if (current === undefined) {
      return {
        ok: false,
        reason: `wasm kernel ${name} is not registered (import @tensorflow/tfjs-backend-wasm first)`,
      };
    }
    const rec = installed.get(name);
    if (rec !== undefined && current === rec.mine) continue;
    const mine = factory(current);
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel(mine);
    installed.set(name, { mine, prev: current });
  }
  return undefined;
}

/**
 * The kernel config a native kernel replaced (and defers to), e.g. this
 * project's wasm training kernel for Conv2DBackpropFilter; undefined for
 * kernels not replaced.
 */
export function replacedKernel(kernelName: string): tf.KernelConfig | undefined {
  return installed.get(kernelName)?.prev;
}

/**
 * Switches the registered native kernels on or off at run time (off: each
 * defers to the kernel it replaced). For A/B measurements and tests.
 */
export function setNativeEnabled(on: boolean): void {
  runtime.enabled = on;
}

/** True when native kernels are registered, loaded and switched on. */
export function nativeActive(): boolean {
  return runtime.enabled && runtime.dnnl !== undefined && installed.size > 0;
}

/**
 * The helper thread's counters for profiles (jobs it ran, jobs this thread
 * took back, time spent on each side and waiting; see `HelperThread.counts`),
 * or undefined without oneDNN or a helper.
 */
export function nativeHelperCounts(): HelperCounts | undefined {
  return runtime.dnnl?.helperCounts;
}
