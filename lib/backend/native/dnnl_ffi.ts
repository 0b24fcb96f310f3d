/**
 * The part of the oneDNN 2.6 C API (`libdnnl.so.2`, Debian package libdnnl2)
 * that the native kernels use, bound through Deno FFI, with the constants and
 * struct sizes of that ABI (read from oneDNN 2.6.3's dnnl.h / dnnl_types.h).
 *
 * Out-parameters (`dnnl_engine_t *` and friends) are passed as 8-byte buffers;
 * descriptor structs (`dnnl_memory_desc_t`, op descriptors) as byte buffers of
 * the sizes below, owned by JS. {@linkcode checkStatus} turns a failed call
 * into a {@linkcode DnnlError}; {@linkcode createHandle} reads a constructor's
 * out-parameter.
 *
 * @module
 */

/** `sizeof(dnnl_memory_desc_t)` in oneDNN 2.6. */
export const MD_BYTES = 696;
/** An op-descriptor buffer large enough for every op used here (convolution: 5976, batch norm: 3496). */
export const OP_DESC_BYTES = 6144;
/** `DNNL_MAX_NDIMS`: length of a `dnnl_dims_t` (int64 elements). */
export const MAX_NDIMS = 12;

/** `dnnl_status_t` values worth naming. */
export const STATUS: Record<number, string> = {
  0: "success",
  1: "out_of_memory",
  2: "invalid_arguments",
  3: "unimplemented",
  4: "iterator_ends",
  5: "runtime_error",
  6: "not_required",
};

/** A oneDNN call that did not return `dnnl_success`. */
export class DnnlError extends Error {
  /** @param call the C function @param status its `dnnl_status_t` */
  constructor(readonly call: string, readonly status: number) {
    super(`oneDNN ${call} failed: ${STATUS[status] ?? "status"} (${status})`);
    this.name = "DnnlError";
  }
}

/** Throws {@linkcode DnnlError} unless `status` is `dnnl_success`. */
export function checkStatus(status: number, call: string): void {
  if (status !== 0) throw new DnnlError(call, status);
}

/** The out-parameter of {@linkcode createHandle}. */
const handleOut = new BigUint64Array(1);

/** Calls a oneDNN constructor with an out-parameter (`dnnl_*_t *`) and returns the handle it wrote. */
export function createHandle(fn: (out: BigUint64Array<ArrayBuffer>) => number, call: string): Deno.PointerValue {
  handleOut[0] = 0n;
  checkStatus(fn(handleOut), call);
  return Deno.UnsafePointer.create(handleOut[0]);
}

/** `dnnl_data_type_t`. */
export const F32 = 3;
/** `dnnl_format_tag_t` values. */
export const TAG = { any: 1, a: 2, ab: 3, abc: 4, abcd: 5, nhwc: 20, hwio: 30 } as const;
/** `dnnl_prop_kind_t` values. */
export const PROP = {
  forwardTraining: 64,
  forwardInference: 96,
  backward: 128,
  backwardData: 160,
  backwardWeights: 192,
} as const;
/** `dnnl_alg_kind_t` values. */
export const ALG = {
  convolutionDirect: 1,
  eltwiseRelu: 31,
  eltwiseTanh: 47,
  eltwiseElu: 63,
  eltwiseLinear: 127,
  eltwiseLogistic: 175,
  eltwiseClipV2: 16,
  poolingMax: 0x1ff,
  poolingAvgIncludePadding: 0x2ff,
  poolingAvgExcludePadding: 0x3ff,
  resamplingNearest: 0x2fff0,
} as const;
/** `DNNL_ARG_*` values. */
export const ARG = {
  src: 1,
  dst: 17,
  weights: 33,
  bias: 41,
  diffSrc: 129,
  diffDst: 145,
  diffWeights: 161,
  workspace: 64,
  mean: 49,
  variance: 50,
  scale: 51,
  shift: 52,
  diffScale: 255,
  diffShift: 256,
  src1: 2,
  scratchpad: 80,
  from: 1,
  to: 17,
} as const;
/** `dnnl_normalization_flags_t` values. */
export const BNORM = { useGlobalStats: 0x1, fuseNormRelu: 0x4, useScale: 0x8, useShift: 0x10 } as const;
/** `dnnl_alg_kind_t` values of the binary primitive. */
export const BINARY = { add: 0x1fff0, mul: 0x1fff1, max: 0x1fff2, min: 0x1fff3, div: 0x1fff4, sub: 0x1fff5 } as const;
/** `dnnl_query_t` values. */
export const QUERY = {
  implInfoStr: 8,
  srcMd: 129,
  diffSrcMd: 130,
  weightsMd: 131,
  diffWeightsMd: 132,
  dstMd: 133,
  diffDstMd: 134,
  workspaceMd: 135,
  scratchpadMd: 136,
} as const;
/** `dnnl_scratchpad_mode_user`: the caller passes each primitive's scratchpad (`DNNL_ARG_SCRATCHPAD`). */
export const SCRATCHPAD_USER = 1;
/** `dnnl_engine_kind_t` cpu. */
export const ENGINE_CPU = 1;
/** `dnnl_stream_default_flags`. */
export const STREAM_DEFAULT = 1;
/** `dnnl_cpu_isa_t` values, for the report. */
export const ISA: Record<number, string> = {
  0x0: "all",
  0x1: "sse41",
  0x3: "avx",
  0x7: "avx2",
  0xf: "avx2_vnni",
  0x27: "avx512_core",
  0x67: "avx512_core_vnni",
  0xe7: "avx512_core_bf16",
  0x3e7: "avx512_core_amx",
};

/** The bit every AVX-512 value of `dnnl_cpu_isa_t` has (avx512_core and above). */
export const ISA_AVX512_BIT = 0x20;

const P = "pointer" as const;
const B = "buffer" as const;
const I = "i32" as const;
const U = "u32" as const;
const F = "f32" as const;
const Z = "usize" as const;

/** Symbols of libdnnl.so.2 bound by {@linkcode openDnnl}. */
export const DNNL_SYMBOLS = {
  dnnl_version: { parameters: [], result: P },
  dnnl_get_effective_cpu_isa: { parameters: [], result: I },
  dnnl_engine_create: { parameters: [B, I, Z], result: I },
  dnnl_engine_destroy: { parameters: [P], result: I },
  dnnl_stream_create: { parameters: [B, P, U], result: I },
  dnnl_stream_wait: { parameters: [P], result: I },
  dnnl_stream_destroy: { parameters: [P], result: I },
  dnnl_memory_desc_init_by_tag: { parameters: [B, I, B, I, I], result: I },
  dnnl_memory_desc_init_by_strides: { parameters: [B, I, B, I, B], result: I },
  dnnl_memory_desc_equal: { parameters: [B, B], result: I },
  dnnl_memory_desc_get_size: { parameters: [B], result: Z },
  dnnl_memory_create: { parameters: [B, B, P, P], result: I },
  dnnl_memory_set_data_handle: { parameters: [P, P], result: I },
  dnnl_memory_get_data_handle: { parameters: [P, B], result: I },
  dnnl_memory_destroy: { parameters: [P], result: I },
  dnnl_dilated_convolution_forward_desc_init: { parameters: [B, I, I, B, B, B, B, B, B, B, B], result: I },
  dnnl_dilated_convolution_backward_data_desc_init: { parameters: [B, I, B, B, B, B, B, B, B], result: I },
  dnnl_dilated_convolution_backward_weights_desc_init: { parameters: [B, I, B, B, B, B, B, B, B, B], result: I },
  dnnl_matmul_desc_init: { parameters: [B, B, B, B, B], result: I },
  dnnl_batch_normalization_forward_desc_init: { parameters: [B, I, B, F, U], result: I },
  dnnl_batch_normalization_backward_desc_init: { parameters: [B, I, B, B, F, U], result: I },
  dnnl_binary_desc_init: { parameters: [B, I, B, B, B], result: I },
  dnnl_eltwise_forward_desc_init: { parameters: [B, I, I, B, F, F], result: I },
  dnnl_eltwise_backward_desc_init: { parameters: [B, I, B, B, F, F], result: I },
  dnnl_resampling_forward_desc_init: { parameters: [B, I, I, B, B, B], result: I },
  dnnl_resampling_backward_desc_init: { parameters: [B, I, B, B, B], result: I },
  dnnl_pooling_forward_desc_init: { parameters: [B, I, I, B, B, B, B, B, B], result: I },
  dnnl_pooling_backward_desc_init: { parameters: [B, I, B, B, B, B, B, B], result: I },
  dnnl_primitive_attr_create: { parameters: [B], result: I },
  dnnl_primitive_attr_destroy: { parameters: [P], result: I },
  dnnl_primitive_attr_set_post_ops: { parameters: [P, P], result: I },
  dnnl_primitive_attr_set_scratchpad_mode: { parameters: [P, I], result: I },
  dnnl_post_ops_create: { parameters: [B], result: I },
  dnnl_post_ops_destroy: { parameters: [P], result: I },
  dnnl_post_ops_append_eltwise: { parameters: [P, F, I, F, F], result: I },
  dnnl_post_ops_append_sum: { parameters: [P, F], result: I },
  dnnl_primitive_desc_create: { parameters: [B, B, P, P, P], result: I },
  dnnl_reorder_primitive_desc_create: { parameters: [B, B, P, B, P, P], result: I },
  dnnl_primitive_desc_query: { parameters: [P, I, I, B], result: I },
  dnnl_primitive_desc_query_md: { parameters: [P, I, I], result: P },
  dnnl_primitive_desc_destroy: { parameters: [P], result: I },
  dnnl_primitive_create: { parameters: [B, P], result: I },
  dnnl_primitive_execute: { parameters: [P, P, I, B], result: I },
  dnnl_primitive_destroy: { parameters: [P], result: I },
} as const;

/** Symbols of the OpenMP runtime oneDNN was built against (libgomp). */
export const OMP_SYMBOLS = {
  omp_get_max_threads: { parameters: [], result: I },
  omp_get_num_procs: { parameters: [], result: I },
  omp_set_num_threads: { parameters: [I], result: "void" },
} as const;

/** The opened oneDNN library. */
export type DnnlLib = Deno.DynamicLibrary<typeof DNNL_SYMBOLS>["symbols"];
/** The opened OpenMP runtime. */
export type OmpLib = Deno.DynamicLibrary<typeof OMP_SYMBOLS>["symbols"];

/** Library names tried, in order (overridable with `MECO_DNNL_PATH`). */
export const DNNL_LIBRARY_NAMES = ["libdnnl.so.2", "/usr/lib/x86_64-linux-gnu/libdnnl.so.2"];

/** Result of {@linkcode openDnnl}: the bound symbols, or why there are none. */
export type OpenResult =
  | { ok: true; dnnl: DnnlLib; omp: OmpLib | undefined; version: string; path: string; wait: string }
  | { ok: false; reason: string };

function errText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/**
 * Spin iterations an idle OpenMP thread of oneDNN waits before it sleeps,
 * unless the user sets `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT`. libgomp's
 * default spins for about 300,000 iterations (up to milliseconds) at every
 * barrier and after every parallel region; when other processes want the
 * cores (a second experiment, a test run) those spinning threads take their
 * time slices, and a ResNet-18-8x step measured 2–3× slower than with short
 * spinning (see PERF.md, "Waiting threads").
 */
export const DEFAULT_GOMP_SPINCOUNT = "10000";

/**
 * Sets `GOMP_SPINCOUNT` to {@linkcode DEFAULT_GOMP_SPINCOUNT} unless a wait
 * policy is set already; libgomp reads it when it is loaded, so this must run
 * before the first dlopen of oneDNN. Returns the policy in force, for reports.
 */
function setWaitPolicy(): string {
  const policy = Deno.env.get("OMP_WAIT_POLICY"), spin = Deno.env.get("GOMP_SPINCOUNT");
  if (policy !== undefined || spin !== undefined) {
    return [policy && `OMP_WAIT_POLICY=${policy}`, spin && `GOMP_SPINCOUNT=${spin}`].filter(Boolean).join(" ");
  }
  try {
    Deno.env.set("GOMP_SPINCOUNT", DEFAULT_GOMP_SPINCOUNT);
    return `GOMP_SPINCOUNT=${DEFAULT_GOMP_SPINCOUNT}`;
  } catch {
    return "libgomp's default wait (no env permission)";
  }
}

/**
 * Opens libdnnl.so.2 (and libgomp for thread control). Never throws: a missing
 * library, a wrong version or an FFI permission that was not granted comes
 * back as `{ ok: false, reason }`.
 */
export function openDnnl(): OpenResult {
  if (Deno.build.os !== "linux") return { ok: false, reason: `oneDNN binding is for linux, not ${Deno.build.os}` };
  let ffi: Deno.PermissionState;
  try {
    ffi = Deno.permissions.querySync({ name: "ffi" }).state;
  } catch (e) {
    return { ok: false, reason: `cannot query the ffi permission: ${errText(e)}` };
  }
  if (ffi !== "granted") return { ok: false, reason: "FFI not permitted (run with -A or --allow-ffi)" };
  const wait = setWaitPolicy();
  const custom = Deno.env.get("MECO_DNNL_PATH");
  const names = custom ? [custom] : DNNL_LIBRARY_NAMES;
  const errors: string[] = [];
  for (const path of names) {
    let lib: Deno.DynamicLibrary<typeof DNNL_SYMBOLS>;
    try {
      lib = Deno.dlopen(path, DNNL_SYMBOLS);
    } catch (e) {
      errors.push(`${path}: ${errText(e)}`);
      continue;
    }
    const vp = lib.symbols.dnnl_version();
    if (vp === null) {
      lib.close();
      errors.push(`${path}: dnnl_version() returned null`);
      continue;
    }
    const v = new Deno.UnsafePointerView(vp);
    const major = v.getInt32(0), minor = v.getInt32(4), patch = v.getInt32(8);
    const version = `${major}.${minor}.${patch}`;
    if (major !== 2 || minor < 6) {
      // The struct sizes and enum values above are those of 2.6; 3.x changed the ABI.
      lib.close();
      errors.push(`${path}: oneDNN ${version}, this binding needs 2.6+ (2.x ABI)`);
      continue;
    }
    let omp: OmpLib | undefined;
    try {
      omp = Deno.dlopen("libgomp.so.1", OMP_SYMBOLS).symbols;
    } catch {
      omp = undefined; // oneDNN then runs with its defaults; only the thread report is lost.
    }
    return { ok: true, dnnl: lib.symbols, omp, version, path, wait };
  }
  return { ok: false, reason: `libdnnl.so.2 not loadable (${errors.join("; ")})` };
}
