/**
 * The ops of a compiled training step (compiled_step.ts): for each supported
 * layer, its forward and backward pass as oneDNN plans (the same plans, thread
 * splits and helper-thread halves as the kernels use) on the step's buffers
 * (step_memory.ts). A backward pass adds its gradient contributions to its
 * inputs' gradients in a fixed order, and posts each convolution's weight
 * gradient to the helper thread as one job.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ALG, ARG, BINARY, PROP, QUERY, TAG } from "./dnnl_ffi.ts";
import type { Dnnl } from "./dnnl.ts";
import type { MemoryDesc } from "./memory_desc.ts";
import type { Plan, PlanSpec } from "./plan.ts";
import { convBackwardData, convBackwardWeightsAsync } from "./conv2d_backprop.ts";
import { activationPostOp, convForward } from "./conv2d.ts";
import { type ConvGeometry, convGeometry } from "./conv_geometry.ts";
import { bnTrainBackward, bnTrainForward, bnTrainMaskBytes, updateMoving } from "./batch_norm_train.ts";
import { BWD, runEltwise } from "./eltwise.ts";
import { backwardDesc, forwardDesc as poolForwardDesc, infoKey, poolDescs } from "./pooling.ts";
import { heapMaxPool, poolOnHeap } from "./max_pool_heap.ts";
import { onesPtr, sumRows } from "./reduce.ts";
import { matMulSpec } from "./batch_mat_mul.ts";
import { threading } from "./runtime.ts";
import { byteOffsetOf } from "./wasm_ptr.ts";
import { NativeBufferError, offsetSized } from "./sized_ptr.ts";
import { activationOf, type GraphNode, type LayerInternals, Unsupported } from "./model_graph.ts";
import type { StepMemory, Value } from "./step_memory.ts";

/** `[x, kernel, (bias,) y]`: the operands of a convolution or dense layer's forward pass. */
function layerPtrs(
  mem: StepMemory,
  x: Value,
  kernel: tf.LayerVariable,
  bias: tf.LayerVariable | null,
  y: Value,
): Deno.PointerValue[] {
  return bias !== null
    ? [mem.ptr(x.activation), mem.weightPtr(kernel), mem.weightPtr(bias), mem.ptr(y.activation)]
    : [mem.ptr(x.activation), mem.weightPtr(kernel), mem.ptr(y.activation)];
}

/** One layer of a compiled step: its forward and backward pass on the step's buffers. */
export interface Op {
  /** What it runs (a layer class, or `Add+ReLU`), for profiles. */
  kind?: string;
  /** Computes the layer's output. */
  forward(): void;
  /** Adds the layer's contributions to its inputs' and weights' gradients. */
  backward(): void;
}

/** `op` whose {@linkcode NativeBufferError}s name the layer `layer` it runs. */
export function namedErrors(op: Op, layer: string): Op {
  const { forward, backward } = op;
  const named = (pass: string, f: () => void) => () => {
    try {
      f();
    } catch (e) {
      if (e instanceof NativeBufferError) throw new NativeBufferError(`layer ${layer} (${pass}): ${e.message}`);
      throw e;
    }
  };
  op.forward = named("forward", forward);
  op.backward = named("backward", backward);
  return op;
}

/** The op running `node` of the graph on `values` (indexed as the graph's values). */
export function layerOp(mem: StepMemory, node: GraphNode, values: Value[]): Op {
  const layer = node.layer as unknown as LayerInternals;
  const x = values[node.inputs[0]], y = values[node.output];
  switch (node.kind) {
    case "Conv2D":
    case "MecoPaddedConv2D":
      return convOp(mem, layer, x, y);
    case "DepthwiseConv2D":
      return convOp(mem, layer, x, y, true);
    case "MecoBatchNorm":
      return batchNormOp(mem, layer, x, y);
    case "ReLU":
      return reluOp(mem, x, y);
    case "Activation":
      return activationOf(layer) === "relu" ? reluOp(mem, x, y) : identityOp(mem, x, y);
    case "Add":
      return addOp(mem, node.inputs.map((i) => values[i]), y);
    case "MaxPooling2D":
    case "AveragePooling2D":
    case "GlobalAveragePooling2D":
      return poolOp(mem, node.kind, layer, x, y);
    case "Dense":
      return denseOp(mem, layer, x, y);
    case "Concatenate":
      return concatenateOp(mem, node.inputs.map((i) => values[i]), y);
    case "ZeroPadding2D":
      return zeroPaddingOp(mem, node.layer as unknown as { padding: [[number, number], [number, number]] }, x, y);
  }
  throw new Unsupported(`layer ${node.layer.name} (${node.kind})`);
}

/** Replaces v's gradient by the gradient through ReLU (v is a ReLU's output). */
function reluBackwardInPlace(mem: StepMemory, v: Value): void {
  const dnnl = mem.dnnl, gradient = mem.ptr(v.gradient!);
  runEltwise(
    `eltwise_bwd|${BWD.relu},0`,
    v.size,
    [mem.ptr(v.activation), gradient, gradient],
    (od, md) => dnnl.lib.dnnl_eltwise_backward_desc_init(od, BWD.relu, md, md, 0, 0),
    (od, md) => dnnl.lib.dnnl_eltwise_forward_desc_init(od, PROP.forwardTraining, BWD.relu, md, 0, 0),
    [ARG.src, ARG.diffDst, ARG.diffSrc],
  );
}

/** Conv2D, MecoPaddedConv2D or (`depthwise`) DepthwiseConv2D, with bias and ReLU when the layer has them. */
function convOp(mem: StepMemory, layer: LayerInternals, x: Value, y: Value, depthwise = false): Op {
  const dnnl = mem.dnnl;
  const kernel = (depthwise ? layer.depthwiseKernel : layer.kernel) as unknown as tf.LayerVariable,
    bias = layer.useBias ? layer.bias as unknown as tf.LayerVariable : null;
  const symmetric = layer.symmetricPadding ?? 0;
  const pad: "same" | "valid" | number[][] = symmetric > 0
    ? [[0, 0], [symmetric, symmetric], [symmetric, symmetric], [0, 0]]
    : layer.padding as "same" | "valid";
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    kernel.shape as [number, number, number, number],
    layer.strides as [number, number],
    1,
    pad as "same",
    undefined,
    depthwise,
  );
  // A depthwise convolution (multiplier 1) is a grouped one: one group per channel.
  const geometry: ConvGeometry = { ...convGeometry(info), ...(depthwise ? { groups: info.inChannels } : {}) };
  if (info.outShape.join() !== y.shape.join()) throw new Unsupported(`conv output ${info.outShape} ≠ ${y.shape}`);
  const relu = activationOf(layer) === "relu";
  const post = activationPostOp(relu ? "relu" : "linear", 0)!;
  const rows = geometry.n * geometry.oh * geometry.ow;
  return {
    forward: () =>
      convForward(
        dnnl,
        geometry,
        bias !== null,
        post,
        layerPtrs(mem, x, kernel, bias, y),
      ),
    backward: () => {
      if (relu) reluBackwardInPlace(mem, y);
      const dy = mem.ptr(y.gradient!);
      // The weight gradient runs on the helper thread while this one goes on down the chain.
      convBackwardWeightsAsync(dnnl, geometry, [mem.ptr(x.activation), dy, mem.gradientPtr(kernel)]);
      if (bias !== null) sumRows(dnnl, rows, geometry.co, false, [onesPtr(rows), dy, mem.gradientPtr(bias)]);
      if (x.gradient !== undefined) {
        const [dx, done] = mem.contribution(x);
        convBackwardData(dnnl, geometry, [dy, mem.weightPtr(kernel), dx]);
        done();
      }
    },
  };
}

/** MecoBatchNorm in training mode (batch statistics, moving averages updated), with its fused ReLU. */
function batchNormOp(mem: StepMemory, layer: LayerInternals, x: Value, y: Value): Op {
  const dnnl = mem.dnnl, backend = mem.backend;
  const c = x.shape[x.shape.length - 1], rows = x.size / c, eps = layer.epsilon!, momentum = layer.momentum!;
  const relu = layer.relu === true;
  const gamma = layer.gamma as unknown as tf.LayerVariable, beta = layer.beta as unknown as tf.LayerVariable;
  const mean = mem.alloc([c]), variance = mem.alloc([c]);
  const mask = relu ? mem.alloc([Math.ceil(bnTrainMaskBytes(dnnl, rows, c, eps) / 4)], "int32") : undefined;
  const moving = [layer.movingMean!, layer.movingVariance!] as unknown as tf.LayerVariable[];
  if (x.gradient === undefined) mem.scratchFor(x); // the input gradient nobody reads goes to scratch
  return {
    forward: () => {
      bnTrainForward(dnnl, rows, c, eps, relu, [
        mem.ptr(x.activation),
        mem.weightPtr(gamma),
        mem.weightPtr(beta),
        mem.ptr(y.activation),
        mem.ptr(mean),
        mem.ptr(variance),
        ...(mask ? [mem.ptr(mask)] : []),
      ]);
      // The moving averages, in place (as tfjs's layer computes them), unless the value is shared.
      moving.forEach((average, i) => {
        const v = average.read() as tf.Variable;
        if ((backend.dataIdMap.get(v.dataId) as { refCount: number }).refCount > 1) {
          tf.tidy(() => v.assign(tf.add(v, 0)));
        }
        const heap = mem.heapFloats();
        const at = byteOffsetOf(backend, v) >>> 2;
        updateMoving(heap, at, (i === 0 ? mean : variance).offset >>> 2, at, c, momentum);
      });
      // tf.add may have grown the heap.
      mem.refreshBase();
    },
    backward: () => {
      const [dx, done] = x.gradient !== undefined ? mem.contribution(x) : [mem.ptr(mem.scratch!), noop];
      bnTrainBackward(dnnl, rows, c, eps, relu, [
        mem.ptr(x.activation),
        mem.ptr(mean),
        mem.ptr(variance),
        mem.ptr(y.gradient!),
        mem.weightPtr(gamma),
        mem.weightPtr(gamma),
        dx,
        mem.gradientPtr(gamma),
        mem.gradientPtr(beta),
        ...(mask ? [mem.ptr(mask)] : []),
      ]);
      done();
    },
  };
}

/** ReLU (or an Activation of relu). */
function reluOp(mem: StepMemory, x: Value, y: Value): Op {
  const dnnl = mem.dnnl;
  return {
    forward: () =>
      runEltwise(
        `eltwise_fwd|${ALG.eltwiseRelu},0,0`,
        x.size,
        [mem.ptr(x.activation), mem.ptr(y.activation)],
        (od, md) => dnnl.lib.dnnl_eltwise_forward_desc_init(od, PROP.forwardInference, ALG.eltwiseRelu, md, 0, 0),
        undefined,
        [ARG.src, ARG.dst],
      ),
    backward: () => {
      if (x.gradient === undefined) return;
      reluBackwardInPlace(mem, y);
      mem.contribute(x, mem.ptr(y.gradient!));
    },
  };
}

/** An Activation of linear: a copy. */
function identityOp(mem: StepMemory, x: Value, y: Value): Op {
  return {
    forward: () => mem.copyPlan(x.size, false).run([mem.ptr(x.activation), mem.ptr(y.activation)]),
    backward: () => {
      if (x.gradient !== undefined) mem.contribute(x, mem.ptr(y.gradient!));
    },
  };
}

/** The plan adding two buffers of `size` floats (then ReLU, with `relu`). */
function addPlan(dnnl: Dnnl, size: number, relu: boolean): Plan {
  return dnnl.plan(`cstep_add|${size}|${relu}`, (): PlanSpec => {
    const md = dnnl.mdTag([size], TAG.a);
    return {
      init: (od) => dnnl.check(dnnl.lib.dnnl_binary_desc_init(od, BINARY.add, md, md, md), "dnnl_binary_desc_init"),
      operands: [{ arg: ARG.src, user: md }, { arg: ARG.src1, user: md }, { arg: ARG.dst, user: md }],
      eltwise: relu ? [[ALG.eltwiseRelu, 0, 0]] : [],
      threads: 1,
    };
  });
}

/** Add of any number of inputs of one shape. */
function addOp(mem: StepMemory, xs: Value[], y: Value): Op {
  return {
    forward: () => {
      addPlan(mem.dnnl, y.size, false).run([
        mem.ptr(xs[0].activation),
        mem.ptr(xs[1].activation),
        mem.ptr(y.activation),
      ]);
      for (let i = 2; i < xs.length; i++) {
        addPlan(mem.dnnl, y.size, false).run([mem.ptr(y.activation), mem.ptr(xs[i].activation), mem.ptr(y.activation)]);
      }
    },
    backward: () => {
      for (const x of xs) if (x.gradient !== undefined) mem.contribute(x, mem.ptr(y.gradient!));
    },
  };
}

/** y = relu(a + b) in one pass; backward: one ReLU-gradient pass, handed to both inputs. */
export function addReluOp(mem: StepMemory, xs: Value[], y: Value): Op {
  const dnnl = mem.dnnl, size = y.size;
  mem.scratchFor(y); // scratch is made now: nothing may allocate while a step runs
  return {
    forward: () =>
      addPlan(mem.dnnl, size, true).run([mem.ptr(xs[0].activation), mem.ptr(xs[1].activation), mem.ptr(y.activation)]),
    backward: () => {
      const first = xs.findIndex((x) => x.gradient !== undefined && x.received === 0);
      let sumGradient: Deno.PointerValue;
      if (first >= 0) {
        xs[first].received++;
        sumGradient = mem.ptr(xs[first].gradient!);
      } else sumGradient = mem.ptr(mem.scratch!);
      runEltwise(
        `eltwise_bwd|${BWD.relu},0`,
        size,
        [mem.ptr(y.activation), mem.ptr(y.gradient!), sumGradient],
        (od, md) => dnnl.lib.dnnl_eltwise_backward_desc_init(od, BWD.relu, md, md, 0, 0),
        (od, md) => dnnl.lib.dnnl_eltwise_forward_desc_init(od, PROP.forwardTraining, BWD.relu, md, 0, 0),
        [ARG.src, ARG.diffDst, ARG.diffSrc],
      );
      xs.forEach((x, i) => {
        if (i !== first && x.gradient !== undefined) mem.contribute(x, sumGradient);
      });
    },
  };
}

/**
 * A dense NHWC tensor of `shape` ([n, h, w, c]) as the window of a larger
 * NHWC buffer of `outer` ([n, H, W, C]) starting at row `top`, column
 * `left`, channel `c0`: the layout and the byte offset of the window.
 */
function windowLayout(
  dnnl: Dnnl,
  shape: number[],
  outer: number[],
  top: number,
  left: number,
  c0: number,
): [MemoryDesc, number] {
  const [n, h, w, c] = shape, [, H, W, C] = outer;
  const md = dnnl.mdStrides([n, c, h, w], [H * W * C, 1, W * C, C]);
  return [md, 4 * ((top * W + left) * C + c0)];
}

/** Dense NHWC layout of `shape`. */
function nhwcLayout(dnnl: Dnnl, shape: number[]): MemoryDesc {
  const [n, h, w, c] = shape;
  return dnnl.mdTag([n, c, h, w], TAG.nhwc);
}

/**
 * Copies `x` into the window `[md, offset]` of `y` forward; backward, the
 * window of y's gradient is x's gradient contribution (copied, or added
 * straight into it by the reorder's sum post-op).
 */
function windowOp(mem: StepMemory, x: Value, y: Value, key: string, md: MemoryDesc, offset: number): Op {
  const dnnl = mem.dnnl, dense = nhwcLayout(mem.dnnl, x.shape);
  return {
    forward: () =>
      dnnl.reorderPlan(`cstep_into|${key}`, dense, md, false).run([
        mem.ptr(x.activation),
        offsetSized(mem.ptr(y.activation), offset, `window ${key} of the output`),
      ]),
    backward: () => {
      if (x.gradient === undefined) return;
      dnnl.reorderPlan(`cstep_from|${key}`, md, dense, x.received++ > 0).run([
        offsetSized(mem.ptr(y.gradient!), offset, `window ${key} of the output gradient`),
        mem.ptr(x.gradient),
      ]);
    },
  };
}

/** Channel concatenation: each input is copied into its channel window (and its gradient read back from it). */
function concatenateOp(mem: StepMemory, xs: Value[], y: Value): Op {
  let c0 = 0;
  const parts = xs.map((x) => {
    const [md, offset] = windowLayout(mem.dnnl, x.shape, y.shape, 0, 0, c0);
    const op = windowOp(mem, x, y, `${x.shape}|${y.shape}|${c0}`, md, offset);
    c0 += x.shape[3];
    return op;
  });
  if (c0 !== y.shape[3]) throw new Unsupported(`concatenation of ${c0} channels into ${y.shape[3]}`);
  return {
    forward: () => parts.forEach((part) => part.forward()),
    backward: () => parts.forEach((part) => part.backward()),
  };
}

/** ZeroPadding2D: x is copied into the interior of y, whose border keeps the zeros it was allocated with. */
function zeroPaddingOp(
  mem: StepMemory,
  l: { padding: [[number, number], [number, number]] },
  x: Value,
  y: Value,
): Op {
  const [[top, bottom], [left, right]] = l.padding;
  if (x.shape[1] + top + bottom !== y.shape[1] || x.shape[2] + left + right !== y.shape[2]) {
    throw new Unsupported(`zero padding ${l.padding} of ${x.shape} into ${y.shape}`);
  }
  const [md, offset] = windowLayout(mem.dnnl, x.shape, y.shape, top, left, 0);
  return windowOp(mem, x, y, `${x.shape}|${y.shape}|${top},${left}`, md, offset);
}

/** MaxPooling2D, AveragePooling2D or GlobalAveragePooling2D (max pooling keeps its workspace for the backward pass). */
function poolOp(mem: StepMemory, kind: string, layer: LayerInternals, x: Value, y: Value): Op {
  const dnnl = mem.dnnl;
  const [, h, w] = x.shape;
  const global = kind === "GlobalAveragePooling2D";
  const size = global ? [h, w] : layer.poolSize as [number, number];
  const strides = global ? [h, w] : layer.strides as [number, number];
  const info = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    size as [number, number],
    strides as [number, number],
    1,
    global ? "valid" : layer.padding as "valid" | "same",
  );
  if (tf.util.sizeFromShape(info.outShape) !== y.size) throw new Unsupported(`pooling output ${info.outShape}`);
  const alg = kind === "MaxPooling2D" ? ALG.poolingMax : ALG.poolingAvgIncludePadding;
  if (alg === ALG.poolingMax && poolOnHeap(dnnl, mem.backend, info.inChannels)) return maxPoolHeapOp(mem, info, x, y);
  const key = `${alg}|${infoKey(info)}`;
  const fwd = () =>
    dnnl.plan(`cstep_pool_fwd|${key}`, (): PlanSpec => {
      const descs = poolDescs(dnnl, info);
      return {
        init: poolForwardDesc(dnnl, descs, alg),
        operands: [
          { arg: ARG.src, user: descs.src },
          { arg: ARG.dst, user: descs.dst },
          ...(alg === ALG.poolingMax ? [{ arg: ARG.workspace, query: QUERY.workspaceMd }] : []),
        ],
        threads: 1,
      };
    });
  const bwd = () =>
    dnnl.plan(`cstep_pool_bwd|${key}`, (): PlanSpec => {
      const descs = poolDescs(dnnl, info);
      return {
        init: backwardDesc(dnnl, descs, alg),
        hint: poolForwardDesc(dnnl, descs, alg),
        operands: [
          { arg: ARG.diffDst, user: descs.dst },
          ...(alg === ALG.poolingMax ? [{ arg: ARG.workspace, query: QUERY.workspaceMd }] : []),
          { arg: ARG.diffSrc, user: descs.src },
        ],
        threads: 1,
      };
    });
  const ws = alg === ALG.poolingMax ? mem.alloc([Math.ceil(fwd().bytes[2] / 4)], "int32") : undefined;
  return {
    forward: () => fwd().run([mem.ptr(x.activation), mem.ptr(y.activation), ...(ws ? [mem.ptr(ws)] : [])]),
    backward: () => {
      if (x.gradient === undefined) return;
      const [dx, done] = mem.contribution(x);
      bwd().run([mem.ptr(y.gradient!), ...(ws ? [mem.ptr(ws)] : []), dx]);
      done();
    },
  };
}

/** Max pooling on the heap (max_pool_heap.ts), keeping each window's maximum's index for the backward pass. */
function maxPoolHeapOp(mem: StepMemory, info: tf.backend_util.Conv2DInfo, x: Value, y: Value): Op {
  const pool = heapMaxPool(mem.backend, convGeometry(info));
  const at = mem.alloc([y.size], "int32");
  return {
    forward: () => pool.forward(x.activation.offset, y.activation.offset, at.offset),
    backward: () => {
      if (x.gradient === undefined) return;
      const into = x.received === 0 ? x.gradient : mem.scratch!; // where mem.contribution puts it
      const [, done] = mem.contribution(x);
      pool.backward(y.gradient!.offset, into.offset, at.offset);
      done();
    },
  };
}

/** Dense (on a Flatten view too), with bias and ReLU when the layer has them. */
function denseOp(mem: StepMemory, layer: LayerInternals, x: Value, y: Value): Op {
  const dnnl = mem.dnnl;
  const kernel = layer.kernel as unknown as tf.LayerVariable,
    bias = layer.useBias ? layer.bias as unknown as tf.LayerVariable : null;
  // x may be a Flatten view of a 4-D value (same buffer, that value's shape).
  const n = x.shape[0], f = x.size / n, k = y.shape[1];
  const relu = activationOf(layer) === "relu";
  const macs = n * f * k;
  // Row-major operands as [1, rows, cols]; a transposed one by its strides.
  const matmul = (
    key: string,
    a: [number, number, number[]],
    b: [number, number, number[]],
    withBias: boolean,
    post: [number, number, number][],
  ) =>
  (ptrs: Deno.PointerValue[]) =>
    dnnl.run(`cstep_matmul|${key}`, threading(macs, false), (threads): PlanSpec => {
      const src = dnnl.mdStrides([1, a[0], a[1]], [a[0] * a[1], ...a[2]]);
      const wei = dnnl.mdStrides([1, b[0], b[1]], [b[0] * b[1], ...b[2]]);
      const dst = dnnl.mdTag([1, a[0], b[1]], TAG.abc);
      return matMulSpec(dnnl, src, wei, withBias ? dnnl.mdTag([1, 1, b[1]], TAG.abc) : null, dst, post, threads);
    }, ptrs);
  const forward = matmul(
    `${n},${f},${k}|fwd|${bias !== null}|${relu}`,
    [n, f, [f, 1]],
    [f, k, [k, 1]],
    bias !== null,
    relu ? [[ALG.eltwiseRelu, 0, 0]] : [],
  );
  const dW = matmul(`${n},${f},${k}|dw`, [f, n, [1, f]], [n, k, [k, 1]], false, []);
  const dX = matmul(`${n},${f},${k}|dx`, [n, k, [k, 1]], [k, f, [1, k]], false, []);
  return {
    forward: () =>
      forward(
        layerPtrs(mem, x, kernel, bias, y),
      ),
    backward: () => {
      if (relu) reluBackwardInPlace(mem, y);
      const dy = mem.ptr(y.gradient!);
      dW([mem.ptr(x.activation), dy, mem.gradientPtr(kernel)]);
      if (bias !== null) sumRows(dnnl, n, k, false, [onesPtr(n), dy, mem.gradientPtr(bias)]);
      if (x.gradient !== undefined) {
        const [dx, done] = mem.contribution(x);
        dX([dy, mem.weightPtr(kernel), dx]);
        done();
      }
    },
  };
}

function noop(): void {}
