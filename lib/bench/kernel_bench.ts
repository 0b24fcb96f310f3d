/**
 * A/B timing of single kernels: each native kernel against the kernel it
 * replaced (switched with `setNativeEnabled`), interleaved in one process on
 * the shapes of the bench workloads. Reports the minimum over repetitions,
 * which is the least disturbed by other processes on a shared machine.
 *
 * Usage: `deno run -A lib/bench/kernel_bench.ts [conv|matmul|elementwise|activations|all]`
 *
 * @module
 */
import { cliError, parseCli } from "../cli/args.ts";
import * as tf from "@tensorflow/tfjs";
import { initBackend, setNativeEnabled, THRESHOLDS } from "../backend/mod.ts";

function minTime(f: () => void, reps = 20): number {
  for (let i = 0; i < 5; i++) f();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    f();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

/** Times `kernel` on random inputs of the given shapes, native and not; prints both and the ratio. */
function bench(name: string, kernel: string, shapes: Record<string, number[]>, attrs: Record<string, unknown>): void {
  const inputs = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, tf.randomNormal(s)]));
  const run = () => (tf.engine().runKernel(kernel, inputs, attrs as tf.NamedAttrMap) as tf.Tensor).dispose();
  setNativeEnabled(true);
  const a = minTime(run);
  setNativeEnabled(false);
  const b = minTime(run);
  setNativeEnabled(true);
  console.log(
    `${name.padEnd(52)} native ${a.toFixed(3).padStart(8)} ms  wasm ${b.toFixed(3).padStart(8)} ms  ×${
      (b / a).toFixed(2)
    }`,
  );
  tf.dispose(Object.values(inputs));
}

function conv(x: number[], f: number[], s: number, pad: "same" | "valid"): void {
  const info = tf.backend_util.computeConv2DInfo(
    x as [number, number, number, number],
    f as [number, number, number, number],
    s,
    1,
    pad,
  );
  const common = { strides: [s, s], pad, dataFormat: "NHWC", dilations: [1, 1] };
  const tag = `[${x}]*[${f}] s${s} ${pad}`;
  bench(`Conv2D ${tag}`, "Conv2D", { x, filter: f }, common);
  bench(`Conv2DBackpropInput ${tag}`, "Conv2DBackpropInput", { dy: info.outShape, filter: f }, {
    ...common,
    inputShape: x,
  });
  bench(`Conv2DBackpropFilter ${tag}`, "Conv2DBackpropFilter", { x, dy: info.outShape }, { ...common, filterShape: f });
}

const CLI = {
  usage: "deno run -A lib/bench/kernel_bench.ts [all|conv|matmul|elementwise|activations]",
  description: "Times single kernels natively and on the pure wasm kernels.",
  positionals: { name: "WHICH", min: 0, max: 1 },
  options: {},
} as const;

if (import.meta.main) {
  const which = parseCli(CLI).positionals[0] ?? "all";
  const groups = ["all", "conv", "matmul", "elementwise", "activations"];
  if (!groups.includes(which)) cliError(CLI, `unknown kernel group "${which}" (expected ${groups.join(", ")})`);
  console.log((await initBackend("wasm")).reason);
  THRESHOLDS.minMacs = 0; // time every shape natively, even where the wasm kernel is kept by default
  if (which === "all" || which === "conv") {
    conv([128, 28, 28, 1], [5, 5, 1, 6], 1, "same");
    conv([128, 14, 14, 6], [5, 5, 6, 16], 1, "valid");
    conv([32, 32, 32, 3], [3, 3, 3, 16], 1, "same");
    conv([32, 32, 32, 16], [3, 3, 16, 16], 1, "same");
    conv([32, 8, 8, 64], [3, 3, 64, 64], 1, "same");
    conv([32, 32, 32, 64], [3, 3, 64, 64], 1, "same");
  }
  if (which === "all" || which === "matmul") {
    for (const [m, k, n] of [[128, 400, 120], [128, 120, 84], [32, 128, 10]]) {
      for (const [ta, tb] of [[false, false], [true, false], [false, true]]) {
        const a = ta ? [1, k, m] : [1, m, k], b = tb ? [1, n, k] : [1, k, n];
        bench(`BatchMatMul ${m}x${k}x${n} ta=${ta} tb=${tb}`, "BatchMatMul", { a, b }, {
          transposeA: ta,
          transposeB: tb,
        });
      }
    }
  }
  if (which === "all" || which === "elementwise") {
    for (const s of [[32, 32, 32, 16], [32, 8, 8, 64], [128, 28, 28, 6]]) {
      const c = s[3];
      bench(`Multiply [${s}]*[${s}] (stays on wasm)`, "Multiply", { a: s, b: s }, {});
      bench(`Multiply [${s}]*[${c}]`, "Multiply", { a: s, b: [c] }, {});
      bench(`Sub [${s}]-[1,1,1,${c}]`, "Sub", { a: s, b: [1, 1, 1, c] }, {});
      bench(`Sum [${s}] axes 0,1,2`, "Sum", { x: s }, { axis: [0, 1, 2], keepDims: false });
      bench(`FusedBatchNorm [${s}]`, "FusedBatchNorm", { x: s, mean: [c], variance: [c], offset: [c], scale: [c] }, {
        varianceEpsilon: 1e-3,
      });
    }
  }
  if (which === "all" || which === "activations") {
    for (const s of [[32, 32, 32, 16], [256, 28, 28, 16]]) {
      bench(`LeakyRelu [${s}]`, "LeakyRelu", { x: s }, { alpha: 0.2 });
      bench(`Tanh [${s}]`, "Tanh", { x: s }, {});
      bench(`Sigmoid [${s}]`, "Sigmoid", { x: s }, {});
    }
    bench("ResizeNearestNeighbor [256,14,14,32]→28×28", "ResizeNearestNeighbor", { images: [256, 14, 14, 32] }, {
      size: [28, 28],
      alignCorners: false,
      halfPixelCenters: false,
    });
    bench("ResizeNearestNeighborGrad [256,14,14,32]←28×28", "ResizeNearestNeighborGrad", {
      images: [256, 14, 14, 32],
      dy: [256, 28, 28, 32],
    }, { alignCorners: false, halfPixelCenters: false });
    bench("MaxPoolGrad [128,28,28,6] 2×2 s2", "MaxPoolGrad", {
      dy: [128, 14, 14, 6],
      input: [128, 28, 28, 6],
      output: [128, 14, 14, 6],
    }, {
      filterSize: 2,
      strides: 2,
      pad: "valid",
    });
  }
}
