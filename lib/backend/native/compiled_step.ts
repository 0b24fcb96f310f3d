/**
 * A compiled training step: the forward pass, a loss on the logits
 * (cross-entropy, DFME's L1) and the backward pass of a layers model run as
 * one fixed list of oneDNN calls on buffers allocated once, instead of
 * through the tfjs engine.
 *
 * Through the engine a ResNet-18-8x step is ≈ 470 kernel calls, each with
 * its bookkeeping (tensor records, the gradient tape, clones of every tensor
 * kept for the backward pass, allocations), and V8 needs some dozens of steps
 * before that JavaScript is optimised. Here the model's graph is read once
 * (per input shape), every activation, gradient and statistic gets a buffer in
 * the wasm heap, and a step is the list of primitive calls (the same plans,
 * thread splits and helper-thread halves as the kernels use) plus a few
 * lines of JavaScript for the loss. Each layer's weight gradient is posted to
 * the helper thread as one job while this thread goes on down the backward
 * pass (`Dnnl.postAsync`). The optimizer update is the caller's
 * optimizer (`applyGradients`), so its state, checkpoints and learning-rate
 * schedules are unchanged.
 *
 * Supported layers: InputLayer, Conv2D, MecoPaddedConv2D and DepthwiseConv2D
 * (multiplier 1, as oneDNN's grouped convolution; any stride and padding,
 * bias, linear or ReLU activation), MecoBatchNorm (channels last,
 * scale and offset, optional fused ReLU), ReLU (no cap, no slope),
 * Activation (linear, relu), Add, Concatenate (channels), ZeroPadding2D,
 * MaxPooling2D (valid or same), AveragePooling2D (valid),
 * GlobalAveragePooling2D, Flatten, Dense (linear or ReLU); one input, one
 * output of logits, no shared or frozen layers: every classifier builder of
 * lib/models (ResNet-8x, LeNet-5, DenseNet-121, GoogLeNet, MobileNetV2). Anything else makes
 * {@linkcode compiledStepSupport} name the reason and the caller keeps the
 * engine path (lib/train/train_step.ts).
 *
 * The results equal the engine path's up to rounding: the same oneDNN
 * primitives on the same splits, gradient contributions of a tensor used
 * twice added in the same order; the loss gradient is `(softmax − onehot)/n`
 * computed directly rather than through logSoftmax's gradient
 * (tests/backend/compiled_step_test.ts compares both paths).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
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
import { onesPtr, sumRows } from "./reduce.ts";
import { matMulSpec } from "./batch_mat_mul.ts";
import { runtime, threading } from "./runtime.ts";
import { byteOffsetOf, heapBase, tensorBytes } from "./wasm_ptr.ts";
import { NativeBufferError, offsetSized, sized } from "./sized_ptr.ts";

/** Milliseconds and calls per op kind of compiled steps, while {@linkcode profileCompiledOps} records. */
export type OpTimes = Map<string, { ms: number; calls: number }>;
let opTimes: OpTimes | undefined;

/**
 * Starts timing every op of compiled steps (forward and backward of each
 * layer kind, the loss, the optimizer) into `times`; the returned function
 * stops. Used by lib/backend/native/profile_workloads.ts.
 */
export function profileCompiledOps(times: OpTimes): () => void {
  opTimes = times;
  return () => {
    opTimes = undefined;
  };
}

/**
 * A loss on the logits `z` ([n, k], row-major) computed in JavaScript: returns
 * its value and writes d loss / d z into `grad` (same layout).
 */
export type LogitsLoss = ((z: Float32Array, grad: Float32Array, n: number, k: number) => number) & {
  /** Throws on bad targets for [n, k] logits; called before the step changes anything. */
  check?: (n: number, k: number) => void;
};

/**
 * Mean softmax cross-entropy against integer `labels` (PyTorch's
 * `F.cross_entropy`); gradient (softmax − onehot)/n. A label that is not a
 * class index is a RangeError naming it.
 */
export function crossEntropyLoss(labels: ArrayLike<number>): LogitsLoss {
  const check = (n: number, k: number) => {
    if (labels.length !== n) throw new RangeError(`${labels.length} labels for a batch of ${n}`);
    for (let i = 0; i < n; i++) {
      const label = labels[i];
      if (!(Number.isInteger(label) && label >= 0 && label < k)) {
        throw new RangeError(`label ${label} of sample ${i} is not a class index in [0, ${k})`);
      }
    }
  };
  const loss = (z: Float32Array, grad: Float32Array, n: number, k: number) => {
    check(n, k);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const row = i * k, label = labels[i];
      let max = -Infinity;
      for (let j = 0; j < k; j++) max = Math.max(max, z[row + j]);
      let sum = 0;
      for (let j = 0; j < k; j++) sum += Math.exp(z[row + j] - max);
      const lse = max + Math.log(sum);
      total += lse - z[row + label];
      for (let j = 0; j < k; j++) grad[row + j] = (Math.exp(z[row + j] - lse) - (j === label ? 1 : 0)) / n;
    }
    return total / n;
  };
  return Object.assign(loss, { check });
}

/**
 * Mean absolute difference to `target` ([n, k], row-major): DFME's clone loss.
 * Gradient ±1/(n·k), −1 where equal, as tfjs differentiates `abs`.
 */
export function l1Loss(target: ArrayLike<number>): LogitsLoss {
  const check = (n: number, k: number) => {
    if (target.length !== n * k) throw new RangeError(`a target of ${target.length} values for [${n}, ${k}] logits`);
  };
  const loss = (z: Float32Array, grad: Float32Array, n: number, k: number) => {
    check(n, k);
    const scale = 1 / (n * k);
    let total = 0;
    for (let i = 0; i < n * k; i++) {
      const d = z[i] - target[i];
      total += Math.abs(d);
      grad[i] = d > 0 ? scale : -scale;
    }
    return total * scale;
  };
  return Object.assign(loss, { check });
}

/**
 * Mean soft cross-entropy against target distributions `targets` ([n, k]):
 * `−Σ t·log softmax(z) / n` (Knockoff's transfer-set loss, tfjs's
 * `losses.softmaxCrossEntropy` on one-hot targets); gradient
 * `(softmax(z)·Σt − t)/n`. The KL divergence to `t` has the same gradient (it
 * differs by t's entropy, a constant).
 */
export function softCrossEntropyLoss(targets: ArrayLike<number>): LogitsLoss {
  const check = (n: number, k: number) => {
    if (targets.length !== n * k) {
      throw new RangeError(`targets of ${targets.length} values for [${n}, ${k}] logits`);
    }
  };
  const loss = (z: Float32Array, grad: Float32Array, n: number, k: number) => {
    check(n, k);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const row = i * k;
      let max = -Infinity, mass = 0;
      for (let j = 0; j < k; j++) {
        max = Math.max(max, z[row + j]);
        mass += targets[row + j];
      }
      let sum = 0;
      for (let j = 0; j < k; j++) sum += Math.exp(z[row + j] - max);
      const lse = max + Math.log(sum);
      for (let j = 0; j < k; j++) {
        const t = targets[row + j];
        if (t !== 0) total -= t * (z[row + j] - lse);
        grad[row + j] = (Math.exp(z[row + j] - lse) * mass - t) / n;
      }
    }
    return total / n;
  };
  return Object.assign(loss, { check });
}

/** A training step (as lib/train/train_step.ts's `TrainStep`). */
type Step = (x: tf.Tensor, y: tf.Tensor1D) => tf.Scalar;

/** Thrown while reading a model the compiled step does not support. */
class Unsupported extends Error {}

type Sym = tf.SymbolicTensor;
interface NodeLike {
  inputTensors: Sym[];
  outputTensors: Sym[];
}
interface LayerVariableLike {
  read(): tf.Tensor;
}
/** Fields of tfjs's layers that their typings mark private. */
interface LayerInternals {
  inboundNodes: NodeLike[];
  kernel?: LayerVariableLike;
  bias?: LayerVariableLike | null;
  useBias?: boolean;
  strides?: number[];
  dilationRate?: number[];
  padding?: string;
  dataFormat?: string;
  activation?: { getClassName(): string };
  poolSize?: number[];
  axis?: number;
  epsilon?: number;
  momentum?: number;
  gamma?: LayerVariableLike;
  beta?: LayerVariableLike;
  movingMean?: LayerVariableLike;
  movingVariance?: LayerVariableLike;
  relu?: boolean;
  maxValue?: number | null;
  symmetricPadding?: number;
  depthwiseKernel?: LayerVariableLike;
  depthMultiplier?: number;
}

/** One layer of the model graph, as read from the model (batch size not yet known). */
interface GraphNode {
  layer: tf.layers.Layer;
  kind: string;
  inputs: number[];
  output: number;
}

/** The graph of a model: symbolic values (by index, shapes without the batch), nodes in execution order. */
interface Graph {
  shapes: (number | null)[][];
  nodes: GraphNode[];
  input: number;
  output: number;
}

const SUPPORTED = new Set([
  "Conv2D",
  "MecoPaddedConv2D",
  "MecoBatchNorm",
  "ReLU",
  "Activation",
  "Add",
  "MaxPooling2D",
  "AveragePooling2D",
  "GlobalAveragePooling2D",
  "Flatten",
  "Dense",
  "Concatenate",
  "ZeroPadding2D",
  "DepthwiseConv2D",
]);

function activationOf(l: LayerInternals): "linear" | "relu" {
  const a = l.activation?.getClassName() ?? "linear";
  if (a !== "linear" && a !== "relu") throw new Unsupported(`activation ${a}`);
  return a;
}

/**
 * Reads the graph of `model` (exported for tests); throws an error naming the
 * first thing the compiled step cannot run.
 */
export function readGraph(model: tf.LayersModel): Graph {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Unsupported("not one input and one output");
  const ids = new Map<number, number>();
  const shapes: (number | null)[][] = [];
  const nodes: GraphNode[] = [];
  const seenLayers = new Set<tf.layers.Layer>();
  const input = model.inputs[0];
  const valueOf = (s: Sym): number => {
    let v = ids.get(s.id);
    if (v !== undefined) return v;
    if (s === input || s.id === input.id) {
      v = shapes.length;
      shapes.push(s.shape);
      ids.set(s.id, v);
      return v;
    }
    const layer = s.sourceLayer as tf.layers.Layer;
    const kind = layer.getClassName();
    if (!SUPPORTED.has(kind)) throw new Unsupported(`layer ${layer.name} (${kind})`);
    if (seenLayers.has(layer)) throw new Unsupported(`layer ${layer.name} is used more than once`);
    if (!layer.trainable && layer.trainableWeights.length + layer.nonTrainableWeights.length > 0) {
      throw new Unsupported(`layer ${layer.name} is frozen`);
    }
    if (s.tensorIndex !== 0) throw new Unsupported(`layer ${layer.name} has several outputs`);
    const node = (layer as unknown as LayerInternals).inboundNodes[s.nodeIndex];
    if (node === undefined || node.outputTensors.length !== 1) throw new Unsupported(`layer ${layer.name}`);
    const inputs = node.inputTensors.map(valueOf);
    seenLayers.add(layer);
    v = shapes.length;
    shapes.push(s.shape);
    ids.set(s.id, v);
    nodes.push({ layer, kind, inputs, output: v });
    return v;
  };
  const output = valueOf(model.outputs[0]);
  if (shapes[output].length !== 2) throw new Unsupported("the output is not [batch, classes] logits");
  return { shapes, nodes, input: ids.get(input.id) ?? -1, output };
}

/**
 * Why the compiled step cannot run `model` (a sentence), or undefined when it
 * can (given oneDNN on the wasm backend; see {@linkcode compiledStepAvailable}).
 */
export function compiledStepSupport(model: tf.LayersModel): string | undefined {
  const g = analyse(model);
  return typeof g === "string" ? g : undefined;
}

/** The checked graph of `model`, or why the compiled step cannot run it. */
function analyse(model: tf.LayersModel): Graph | string {
  try {
    const g = readGraph(model);
    if (g.input < 0) return "the output does not depend on the input";
    for (const n of g.nodes) checkLayer(n, g);
    const used = new Set<tf.LayerVariable>();
    for (const n of g.nodes) for (const w of n.layer.trainableWeights) used.add(w);
    for (const w of model.trainableWeights) {
      if (!used.has(w)) throw new Unsupported(`weight ${w.name} is not in a supported layer`);
    }
    return g;
  } catch (e) {
    if (e instanceof Unsupported) return `unsupported: ${e.message}`;
    throw e;
  }
}

function checkLayer(n: GraphNode, g: Graph): void {
  const l = n.layer as unknown as LayerInternals;
  const rank = g.shapes[n.inputs[0]].length;
  const where = `layer ${n.layer.name} (${n.kind})`;
  switch (n.kind) {
    case "DepthwiseConv2D":
    case "Conv2D":
    case "MecoPaddedConv2D":
      if (n.kind === "DepthwiseConv2D" && l.depthMultiplier !== 1) {
        throw new Unsupported(`${where}: depth multiplier ${l.depthMultiplier}`);
      }
      if (rank !== 4 || l.dataFormat !== "channelsLast") throw new Unsupported(`${where}: not NHWC`);
      if ((l.dilationRate ?? [1, 1]).some((r) => r !== 1)) throw new Unsupported(`${where}: dilated`);
      activationOf(l);
      break;
    case "MecoBatchNorm":
      if (!(l.axis === -1 || l.axis === rank - 1)) throw new Unsupported(`${where}: not over the last axis`);
      if (l.gamma == null || l.beta == null) throw new Unsupported(`${where}: without scale or offset`);
      break;
    case "ReLU":
      if (l.maxValue != null) throw new Unsupported(`${where}: capped`);
      break;
    case "Activation":
      activationOf(l);
      break;
    case "Add":
      if (n.inputs.some((i) => g.shapes[i].join() !== g.shapes[n.output].join())) {
        throw new Unsupported(`${where}: broadcasting`);
      }
      break;
    case "MaxPooling2D":
    case "AveragePooling2D":
      // Max pooling ignores padding cells in tfjs and oneDNN alike; average pooling's divisor would differ.
      if (
        rank !== 4 || l.dataFormat !== "channelsLast" ||
        !(l.padding === "valid" || (l.padding === "same" && n.kind === "MaxPooling2D"))
      ) {
        throw new Unsupported(`${where}: only NHWC max pooling or valid average pooling`);
      }
      break;
    case "Concatenate":
      if (rank !== 4 || !(l.axis === -1 || l.axis === 3)) throw new Unsupported(`${where}: not along NHWC channels`);
      break;
    case "ZeroPadding2D":
      if (rank !== 4 || l.dataFormat !== "channelsLast") throw new Unsupported(`${where}: not NHWC`);
      break;
    case "GlobalAveragePooling2D":
      if (rank !== 4 || l.dataFormat !== "channelsLast") throw new Unsupported(`${where}: not NHWC`);
      break;
    case "Dense":
      if (rank !== 2) throw new Unsupported(`${where}: input of rank ${rank}`);
      activationOf(l);
      break;
  }
  if (n.kind !== "Add" && n.kind !== "Concatenate" && n.inputs.length !== 1) {
    throw new Unsupported(`${where}: several inputs`);
  }
}

/** True when a compiled step can run now: oneDNN loaded, native kernels on, the wasm backend active. */
export function compiledStepAvailable(): boolean {
  let env: string | undefined;
  try {
    env = Deno.env.get("MECO_COMPILED_STEP");
  } catch {
    env = undefined;
  }
  return env !== "0" && runtime.enabled && runtime.dnnl !== undefined && tf.getBackend() === "wasm";
}

/** A buffer in the wasm heap owned by a compiled step. */
interface Buf {
  t: tf.Tensor;
  off: number;
}

/** A value of the graph at a known batch size. */
interface Value {
  shape: number[];
  size: number;
  act: Buf;
  grad: Buf | undefined;
  /** Gradient contributions per step (one per use), and how many arrived so far this step. */
  uses: number;
  got: number;
}

interface Op {
  /** What it runs (a layer class, or `Add+ReLU`), for profiles. */
  kind?: string;
  forward(): void;
  backward(): void;
}

/** `op` whose {@linkcode NativeBufferError}s name the layer `layer` it runs. */
function namedErrors(op: Op, layer: string): Op {
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

/** The step for one input shape (exported for tests; use {@linkcode compileTrainStep}). */
export class Compiled {
  private readonly bufs: tf.Tensor[] = [];
  readonly ops: Op[] = [];
  readonly values: Value[] = [];
  private readonly grads = new Map<tf.LayerVariable, Buf>();
  private readonly gradList: { name: string; tensor: tf.Tensor }[] = [];
  private base: Deno.PointerObject = null as unknown as Deno.PointerObject;
  private tmp: Buf | undefined;
  private readonly output: Value;

  constructor(
    private readonly backend: BackendWasm,
    private readonly d: Dnnl,
    graph: Graph,
    trainable: tf.LayerVariable[],
    xShape: number[],
  ) {
    try {
      this.build(graph, trainable, xShape);
    } catch (e) {
      this.dispose(); // nothing half-made is left behind
      throw e;
    }
    this.output = this.values[graph.output];
    this.inputValue = this.values[graph.input];
  }

  private build(graph: Graph, trainable: tf.LayerVariable[], xShape: number[]): void {
    const batch = xShape[0];
    const values: (Value | undefined)[] = [];
    // Flatten is a view: its output shares its input's buffers (and gradient contributions).
    const alias = new Map<number, number>();
    for (const n of graph.nodes) if (n.kind === "Flatten") alias.set(n.output, n.inputs[0]);
    const root = (v: number): number => alias.has(v) ? root(alias.get(v)!) : v;
    const totalUses = new Array(graph.shapes.length).fill(0);
    const consumers = new Map<number, GraphNode[]>();
    for (const n of graph.nodes) {
      if (n.kind === "Flatten") continue;
      for (const i of n.inputs) {
        totalUses[root(i)]++;
        consumers.set(root(i), [...consumers.get(root(i)) ?? [], n]);
      }
    }
    // Add followed only by ReLU (the residual join) runs as one op: no buffers for the sum itself.
    const fused = new Map<GraphNode, GraphNode>();
    const unused = new Set<number>();
    for (const n of graph.nodes) {
      const next = consumers.get(n.output);
      if (
        n.kind === "Add" && n.inputs.length === 2 && n.output !== graph.output && next?.length === 1 && isRelu(next[0])
      ) {
        fused.set(n, next[0]);
        unused.add(n.output);
      }
    }
    let maxShared = 0;
    for (let v = 0; v < graph.shapes.length; v++) {
      if (alias.has(v) || unused.has(v)) continue;
      const shape = v === graph.input ? xShape : [batch, ...graph.shapes[v].slice(1) as number[]];
      if (shape.some((s) => !Number.isInteger(s) || s <= 0)) throw new Unsupported(`value of shape ${shape}`);
      const size = tf.util.sizeFromShape(shape);
      const isInput = v === graph.input;
      values[v] = {
        shape,
        size,
        act: isInput ? { t: undefined as unknown as tf.Tensor, off: -1 } : this.alloc(shape),
        grad: isInput ? undefined : this.alloc(shape),
        uses: totalUses[v],
        got: 0,
      };
      if (totalUses[v] > 1) maxShared = Math.max(maxShared, size);
    }
    for (const [out] of alias) {
      const r = values[root(out)]!;
      const shape = [batch, ...graph.shapes[out].slice(1) as number[]];
      if (tf.util.sizeFromShape(shape) !== r.size) throw new Unsupported("flatten of a different size");
      values[out] = r;
    }
    if (maxShared > 0) this.tmp = this.alloc([maxShared]);
    this.values.push(...values as Value[]);
    for (const w of trainable) {
      const b = this.alloc(w.shape as number[]);
      this.grads.set(w, b);
      this.gradList.push({ name: (w.read() as tf.Variable).name, tensor: b.t });
    }
    this.base = heapBase(this.backend);
    const skip = new Set(fused.values());
    for (const n of graph.nodes) {
      if (n.kind === "Flatten" || skip.has(n)) continue;
      const relu = fused.get(n);
      const op = relu === undefined
        ? this.op(n)
        : this.addRelu(n.inputs.map((i) => this.values[i]), this.values[relu.output]);
      op.kind = relu === undefined ? n.kind : "Add+ReLU";
      this.ops.push(namedErrors(op, n.layer.name));
    }
  }

  private readonly inputValue: Value;

  /** The gradient buffers, one per trainable weight in the model's order (filled by {@linkcode run}). */
  get gradients(): readonly { name: string; tensor: tf.Tensor }[] {
    return this.gradList;
  }

  private alloc(shape: number[], dtype: "float32" | "int32" = "float32"): Buf {
    const t = tf.keep(tf.zeros(shape, dtype));
    this.bufs.push(t);
    return { t, off: byteOffsetOf(this.backend, t) };
  }

  /** Native address of a buffer (valid for this step: the heap does not grow while it runs). */
  private p(b: Buf): Deno.PointerValue {
    return sized(Deno.UnsafePointer.offset(this.base, b.off), tensorBytes(b.t));
  }

  /** Native address of a variable's current value (the optimizer replaces it every step). */
  private w(v: tf.LayerVariable): Deno.PointerValue {
    const t = v.read();
    return sized(Deno.UnsafePointer.offset(this.base, byteOffsetOf(this.backend, t)), tensorBytes(t));
  }

  /** `[x, kernel, (bias,) y]`: the operands of a convolution or dense layer's forward pass. */
  private layerPtrs(x: Value, kernel: tf.LayerVariable, bias: tf.LayerVariable | null, y: Value): Deno.PointerValue[] {
    return bias !== null
      ? [this.p(x.act), this.w(kernel), this.w(bias), this.p(y.act)]
      : [this.p(x.act), this.w(kernel), this.p(y.act)];
  }

  private g(v: tf.LayerVariable | undefined | null): Deno.PointerValue {
    return this.p(this.grads.get(v!)!);
  }

  /**
   * Where the next gradient contribution to `v` goes, and what to call once it
   * is written: the first one lands in v's gradient, later ones in scratch
   * memory and are then added (one reorder with oneDNN's sum post-op).
   */
  private contribution(v: Value): [Deno.PointerValue, () => void] {
    if (v.got++ === 0) return [this.p(v.grad!), noop];
    const tmp = this.p(this.tmp!);
    return [tmp, () => this.flat(v.size, true).run([tmp, this.p(v.grad!)])];
  }

  /** Adds (or, as the first contribution, copies) the buffer at `src` into v's gradient. */
  private contribute(v: Value, src: Deno.PointerValue): void {
    this.flat(v.size, v.got++ > 0).run([src, this.p(v.grad!)]);
  }

  private readonly flatMds = new Map<number, MemoryDesc>();

  /**
   * The plan copying (or, `accumulate`, adding) `size` floats. Plans are
   * looked up in the library's cache at every use, never kept here: the cache
   * may evict (and destroy) any plan.
   */
  private flat(size: number, accumulate: boolean): Plan {
    let md = this.flatMds.get(size);
    if (md === undefined) this.flatMds.set(size, md = this.d.mdTag([size], TAG.a));
    return this.d.reorderPlan(`flat|${size}`, md, md, accumulate);
  }

  private op(n: GraphNode): Op {
    const l = n.layer as unknown as LayerInternals;
    const x = this.values[n.inputs[0]], y = this.values[n.output];
    switch (n.kind) {
      case "Conv2D":
      case "MecoPaddedConv2D":
        return this.conv(l, x, y);
      case "DepthwiseConv2D":
        return this.conv(l, x, y, true);
      case "MecoBatchNorm":
        return this.batchNorm(l, x, y);
      case "ReLU":
        return this.relu(x, y);
      case "Activation":
        return activationOf(l) === "relu" ? this.relu(x, y) : this.identity(x, y);
      case "Add":
        return this.add(n.inputs.map((i) => this.values[i]), y);
      case "MaxPooling2D":
      case "AveragePooling2D":
      case "GlobalAveragePooling2D":
        return this.pool(n.kind, l, x, y);
      case "Dense":
        return this.dense(l, x, y);
      case "Concatenate":
        return this.concatenate(n.inputs.map((i) => this.values[i]), y);
      case "ZeroPadding2D":
        return this.zeroPadding(n.layer as unknown as { padding: [[number, number], [number, number]] }, x, y);
    }
    throw new Unsupported(`layer ${n.layer.name} (${n.kind})`);
  }

  private reluBackwardInPlace(v: Value): void {
    const d = this.d, g = this.p(v.grad!);
    runEltwise(
      `eltwise_bwd|${BWD.relu},0`,
      v.size,
      [this.p(v.act), g, g],
      (od, md) => d.lib.dnnl_eltwise_backward_desc_init(od, BWD.relu, md, md, 0, 0),
      (od, md) => d.lib.dnnl_eltwise_forward_desc_init(od, PROP.forwardTraining, BWD.relu, md, 0, 0),
      [ARG.src, ARG.diffDst, ARG.diffSrc],
    );
  }

  private conv(l: LayerInternals, x: Value, y: Value, depthwise = false): Op {
    const d = this.d;
    const kernel = (depthwise ? l.depthwiseKernel : l.kernel) as unknown as tf.LayerVariable,
      bias = l.useBias ? l.bias as unknown as tf.LayerVariable : null;
    const p = l.symmetricPadding ?? 0;
    const pad: "same" | "valid" | number[][] = p > 0 ? [[0, 0], [p, p], [p, p], [0, 0]] : l.padding as "same" | "valid";
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      kernel.shape as [number, number, number, number],
      l.strides as [number, number],
      1,
      pad as "same",
      undefined,
      depthwise,
    );
    // A depthwise convolution (multiplier 1) is a grouped one: one group per channel.
    const g: ConvGeometry = { ...convGeometry(info), ...(depthwise ? { groups: info.inChannels } : {}) };
    if (info.outShape.join() !== y.shape.join()) throw new Unsupported(`conv output ${info.outShape} ≠ ${y.shape}`);
    const relu = activationOf(l) === "relu";
    const post = activationPostOp(relu ? "relu" : "linear", 0)!;
    const rows = g.n * g.oh * g.ow;
    return {
      forward: () =>
        convForward(
          d,
          g,
          bias !== null,
          post,
          this.layerPtrs(x, kernel, bias, y),
        ),
      backward: () => {
        if (relu) this.reluBackwardInPlace(y);
        const dy = this.p(y.grad!);
        // The weight gradient runs on the helper thread while this one goes on down the chain.
        convBackwardWeightsAsync(d, g, [this.p(x.act), dy, this.g(kernel)]);
        if (bias !== null) sumRows(d, rows, g.co, false, [onesPtr(rows), dy, this.g(bias)]);
        if (x.grad !== undefined) {
          const [dx, done] = this.contribution(x);
          convBackwardData(d, g, [dy, this.w(kernel), dx]);
          done();
        }
      },
    };
  }

  private batchNorm(l: LayerInternals, x: Value, y: Value): Op {
    const d = this.d, backend = this.backend;
    const c = x.shape[x.shape.length - 1], rows = x.size / c, eps = l.epsilon!, momentum = l.momentum!;
    const relu = l.relu === true;
    const gamma = l.gamma as unknown as tf.LayerVariable, beta = l.beta as unknown as tf.LayerVariable;
    const mean = this.alloc([c]), variance = this.alloc([c]);
    const mask = relu ? this.alloc([Math.ceil(bnTrainMaskBytes(d, rows, c, eps) / 4)], "int32") : undefined;
    const moving = [l.movingMean!, l.movingVariance!] as unknown as tf.LayerVariable[];
    if (x.grad === undefined) this.tmpFor(x); // the input gradient nobody reads goes to scratch
    return {
      forward: () => {
        bnTrainForward(d, rows, c, eps, relu, [
          this.p(x.act),
          this.w(gamma),
          this.w(beta),
          this.p(y.act),
          this.p(mean),
          this.p(variance),
          ...(mask ? [this.p(mask)] : []),
        ]);
        // The moving averages, in place (as tfjs's layer computes them), unless the value is shared.
        moving.forEach((mv, i) => {
          const v = mv.read() as tf.Variable;
          if ((backend.dataIdMap.get(v.dataId) as { refCount: number }).refCount > 1) {
            tf.tidy(() => v.assign(tf.add(v, 0)));
          }
          const heap = new Float32Array((backend.wasm as unknown as { HEAPU8: Uint8Array<ArrayBuffer> }).HEAPU8.buffer);
          const o = byteOffsetOf(backend, v) >>> 2;
          updateMoving(heap, o, (i === 0 ? mean : variance).off >>> 2, o, c, momentum);
        });
        // tf.add may have grown the heap.
        this.base = heapBase(backend);
      },
      backward: () => {
        const [dx, done] = x.grad !== undefined ? this.contribution(x) : [this.p(this.tmp!), noop];
        bnTrainBackward(d, rows, c, eps, relu, [
          this.p(x.act),
          this.p(mean),
          this.p(variance),
          this.p(y.grad!),
          this.w(gamma),
          this.w(gamma),
          dx,
          this.g(gamma),
          this.g(beta),
          ...(mask ? [this.p(mask)] : []),
        ]);
        done();
      },
    };
  }

  /** Makes the scratch buffer at least as large as `v` (only while building: a step must not allocate). */
  private tmpFor(v: Value): Buf {
    if (this.tmp === undefined || this.tmp.t.size < v.size) this.tmp = this.alloc([v.size]);
    return this.tmp;
  }

  private relu(x: Value, y: Value): Op {
    const d = this.d;
    return {
      forward: () =>
        runEltwise(
          `eltwise_fwd|${ALG.eltwiseRelu},0,0`,
          x.size,
          [this.p(x.act), this.p(y.act)],
          (od, md) => d.lib.dnnl_eltwise_forward_desc_init(od, PROP.forwardInference, ALG.eltwiseRelu, md, 0, 0),
          undefined,
          [ARG.src, ARG.dst],
        ),
      backward: () => {
        if (x.grad === undefined) return;
        this.reluBackwardInPlace(y);
        this.contribute(x, this.p(y.grad!));
      },
    };
  }

  private identity(x: Value, y: Value): Op {
    return {
      forward: () => this.flat(x.size, false).run([this.p(x.act), this.p(y.act)]),
      backward: () => {
        if (x.grad !== undefined) this.contribute(x, this.p(y.grad!));
      },
    };
  }

  /** The plan adding two buffers of `size` floats (then ReLU, with `relu`). */
  private addPlan(size: number, relu: boolean): Plan {
    const d = this.d;
    return d.plan(`cstep_add|${size}|${relu}`, (): PlanSpec => {
      const md = d.mdTag([size], TAG.a);
      return {
        init: (od) => d.check(d.lib.dnnl_binary_desc_init(od, BINARY.add, md, md, md), "dnnl_binary_desc_init"),
        operands: [{ arg: ARG.src, user: md }, { arg: ARG.src1, user: md }, { arg: ARG.dst, user: md }],
        eltwise: relu ? [[ALG.eltwiseRelu, 0, 0]] : [],
        threads: 1,
      };
    });
  }

  private add(xs: Value[], y: Value): Op {
    return {
      forward: () => {
        this.addPlan(y.size, false).run([this.p(xs[0].act), this.p(xs[1].act), this.p(y.act)]);
        for (let i = 2; i < xs.length; i++) {
          this.addPlan(y.size, false).run([this.p(y.act), this.p(xs[i].act), this.p(y.act)]);
        }
      },
      backward: () => {
        for (const x of xs) if (x.grad !== undefined) this.contribute(x, this.p(y.grad!));
      },
    };
  }

  /** y = relu(a + b) in one pass; backward: one ReLU-gradient pass, handed to both inputs. */
  private addRelu(xs: Value[], y: Value): Op {
    const d = this.d, size = y.size;
    this.tmpFor(y); // scratch is made now: nothing may allocate while a step runs
    return {
      forward: () => this.addPlan(size, true).run([this.p(xs[0].act), this.p(xs[1].act), this.p(y.act)]),
      backward: () => {
        const first = xs.findIndex((x) => x.grad !== undefined && x.got === 0);
        let r: Deno.PointerValue;
        if (first >= 0) {
          xs[first].got++;
          r = this.p(xs[first].grad!);
        } else r = this.p(this.tmp!);
        runEltwise(
          `eltwise_bwd|${BWD.relu},0`,
          size,
          [this.p(y.act), this.p(y.grad!), r],
          (od, md) => d.lib.dnnl_eltwise_backward_desc_init(od, BWD.relu, md, md, 0, 0),
          (od, md) => d.lib.dnnl_eltwise_forward_desc_init(od, PROP.forwardTraining, BWD.relu, md, 0, 0),
          [ARG.src, ARG.diffDst, ARG.diffSrc],
        );
        xs.forEach((x, i) => {
          if (i !== first && x.grad !== undefined) this.contribute(x, r);
        });
      },
    };
  }

  /**
   * A dense NHWC tensor of `shape` ([n, h, w, c]) as the window of a larger
   * NHWC buffer of `outer` ([n, H, W, C]) starting at row `top`, column
   * `left`, channel `c0`: the layout and the byte offset of the window.
   */
  private window(shape: number[], outer: number[], top: number, left: number, c0: number): [MemoryDesc, number] {
    const [n, h, w, c] = shape, [, H, W, C] = outer;
    const md = this.d.mdStrides([n, c, h, w], [H * W * C, 1, W * C, C]);
    return [md, 4 * ((top * W + left) * C + c0)];
  }

  /** Dense NHWC layout of `shape`. */
  private dense4(shape: number[]): MemoryDesc {
    const [n, h, w, c] = shape;
    return this.d.mdTag([n, c, h, w], TAG.nhwc);
  }

  /**
   * Copies `x` into the window `[md, offset]` of `y` forward; backward, the
   * window of y's gradient is x's gradient contribution (copied, or added
   * straight into it by the reorder's sum post-op).
   */
  private windowOp(x: Value, y: Value, key: string, md: MemoryDesc, offset: number): Op {
    const d = this.d, dense = this.dense4(x.shape);
    return {
      forward: () =>
        d.reorderPlan(`cstep_into|${key}`, dense, md, false).run([
          this.p(x.act),
          offsetSized(this.p(y.act), offset, `window ${key} of the output`),
        ]),
      backward: () => {
        if (x.grad === undefined) return;
        d.reorderPlan(`cstep_from|${key}`, md, dense, x.got++ > 0).run([
          offsetSized(this.p(y.grad!), offset, `window ${key} of the output gradient`),
          this.p(x.grad),
        ]);
      },
    };
  }

  /** Channel concatenation: each input is copied into its channel window (and its gradient read back from it). */
  private concatenate(xs: Value[], y: Value): Op {
    let c0 = 0;
    const parts = xs.map((x) => {
      const [md, offset] = this.window(x.shape, y.shape, 0, 0, c0);
      const op = this.windowOp(x, y, `${x.shape}|${y.shape}|${c0}`, md, offset);
      c0 += x.shape[3];
      return op;
    });
    if (c0 !== y.shape[3]) throw new Unsupported(`concatenation of ${c0} channels into ${y.shape[3]}`);
    return {
      forward: () => parts.forEach((p) => p.forward()),
      backward: () => parts.forEach((p) => p.backward()),
    };
  }

  /** ZeroPadding2D: x is copied into the interior of y, whose border keeps the zeros it was allocated with. */
  private zeroPadding(l: { padding: [[number, number], [number, number]] }, x: Value, y: Value): Op {
    const [[top, bottom], [left, right]] = l.padding;
    if (x.shape[1] + top + bottom !== y.shape[1] || x.shape[2] + left + right !== y.shape[2]) {
      throw new Unsupported(`zero padding ${l.padding} of ${x.shape} into ${y.shape}`);
    }
    const [md, offset] = this.window(x.shape, y.shape, top, left, 0);
    return this.windowOp(x, y, `${x.shape}|${y.shape}|${top},${left}`, md, offset);
  }

  private pool(kind: string, l: LayerInternals, x: Value, y: Value): Op {
    const d = this.d;
    const [, h, w] = x.shape;
    const global = kind === "GlobalAveragePooling2D";
    const size = global ? [h, w] : l.poolSize as [number, number];
    const strides = global ? [h, w] : l.strides as [number, number];
    const info = tf.backend_util.computePool2DInfo(
      x.shape as [number, number, number, number],
      size as [number, number],
      strides as [number, number],
      1,
      global ? "valid" : l.padding as "valid" | "same",
    );
    if (tf.util.sizeFromShape(info.outShape) !== y.size) throw new Unsupported(`pooling output ${info.outShape}`);
    const alg = kind === "MaxPooling2D" ? ALG.poolingMax : ALG.poolingAvgIncludePadding;
    const key = `${alg}|${infoKey(info)}`;
    const fwd = () =>
      d.plan(`cstep_pool_fwd|${key}`, (): PlanSpec => {
        const m = poolDescs(d, info);
        return {
          init: poolForwardDesc(d, m, alg),
          operands: [
            { arg: ARG.src, user: m.src },
            { arg: ARG.dst, user: m.dst },
            ...(alg === ALG.poolingMax ? [{ arg: ARG.workspace, query: QUERY.workspaceMd }] : []),
          ],
          threads: 1,
        };
      });
    const bwd = () =>
      d.plan(`cstep_pool_bwd|${key}`, (): PlanSpec => {
        const m = poolDescs(d, info);
        return {
          init: backwardDesc(d, m, alg),
          hint: poolForwardDesc(d, m, alg),
          operands: [
            { arg: ARG.diffDst, user: m.dst },
            ...(alg === ALG.poolingMax ? [{ arg: ARG.workspace, query: QUERY.workspaceMd }] : []),
            { arg: ARG.diffSrc, user: m.src },
          ],
          threads: 1,
        };
      });
    const ws = alg === ALG.poolingMax ? this.alloc([Math.ceil(fwd().bytes[2] / 4)], "int32") : undefined;
    return {
      forward: () => fwd().run([this.p(x.act), this.p(y.act), ...(ws ? [this.p(ws)] : [])]),
      backward: () => {
        if (x.grad === undefined) return;
        const [dx, done] = this.contribution(x);
        bwd().run([this.p(y.grad!), ...(ws ? [this.p(ws)] : []), dx]);
        done();
      },
    };
  }

  private dense(l: LayerInternals, x: Value, y: Value): Op {
    const d = this.d;
    const kernel = l.kernel as unknown as tf.LayerVariable,
      bias = l.useBias ? l.bias as unknown as tf.LayerVariable : null;
    // x may be a Flatten view of a 4-D value (same buffer, that value's shape).
    const n = x.shape[0], f = x.size / n, k = y.shape[1];
    const relu = activationOf(l) === "relu";
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
      d.run(`cstep_matmul|${key}`, threading(macs, false), (threads): PlanSpec => {
        const src = d.mdStrides([1, a[0], a[1]], [a[0] * a[1], ...a[2]]);
        const wei = d.mdStrides([1, b[0], b[1]], [b[0] * b[1], ...b[2]]);
        const dst = d.mdTag([1, a[0], b[1]], TAG.abc);
        return matMulSpec(d, src, wei, withBias ? d.mdTag([1, 1, b[1]], TAG.abc) : null, dst, post, threads);
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
          this.layerPtrs(x, kernel, bias, y),
        ),
      backward: () => {
        if (relu) this.reluBackwardInPlace(y);
        const dy = this.p(y.grad!);
        dW([this.p(x.act), dy, this.g(kernel)]);
        if (bias !== null) sumRows(d, n, k, false, [onesPtr(n), dy, this.g(bias)]);
        if (x.grad !== undefined) {
          const [dx, done] = this.contribution(x);
          dX([dy, this.w(kernel), dx]);
          done();
        }
      },
    };
  }

  /** One training step on the batch `x` with `loss` on the logits, then `optimizer`'s update; returns the loss. */
  run(x: tf.Tensor, loss: LogitsLoss, optimizer: tf.Optimizer): number {
    const backend = this.backend;
    if (tensorBytes(x) < 4 * this.inputValue.size) {
      throw new RangeError(`compiled step: input of ${x.size} values, the step was built for ${this.inputValue.size}`);
    }
    this.inputValue.act.t = x;
    this.inputValue.act.off = byteOffsetOf(backend, x);
    this.base = heapBase(backend);
    loss.check?.(this.output.shape[0], this.output.shape[1]);
    for (const v of this.values) if (v !== undefined) v.got = 0;
    const times = opTimes;
    if (times !== undefined) return this.profiledRun(loss, optimizer, times);
    for (const op of this.ops) op.forward();
    const value = this.lossAndGradient(loss);
    try {
      for (let i = this.ops.length - 1; i >= 0; i--) this.ops[i].backward();
    } finally {
      this.d.finishAsync();
    }
    optimizer.applyGradients(this.gradList);
    return value;
  }

  /** {@linkcode run} with each op's forward and backward timed into `times` (see {@linkcode profileCompiledOps}). */
  private profiledRun(lossFn: LogitsLoss, optimizer: tf.Optimizer, times: OpTimes): number {
    const timed = (name: string, f: () => void) => {
      const t = performance.now();
      f();
      const rec = times.get(name) ?? { ms: 0, calls: 0 };
      rec.ms += performance.now() - t;
      rec.calls++;
      times.set(name, rec);
    };
    for (const op of this.ops) timed(`${op.kind} forward`, () => op.forward());
    let loss = 0;
    timed("loss", () => loss = this.lossAndGradient(lossFn));
    try {
      for (let i = this.ops.length - 1; i >= 0; i--) {
        timed(`${this.ops[i].kind} backward`, () => this.ops[i].backward());
      }
    } finally {
      timed("wait for the helper's last weight gradient", () => this.d.finishAsync());
    }
    timed("optimizer", () => optimizer.applyGradients(this.gradList));
    return loss;
  }

  /** Runs `loss` on the logits, which writes their gradient; returns its value. */
  private lossAndGradient(loss: LogitsLoss): number {
    const out = this.output;
    const heap = new Float32Array((this.backend.wasm as unknown as { HEAPU8: Uint8Array<ArrayBuffer> }).HEAPU8.buffer);
    const [n, k] = out.shape;
    const value = loss(
      heap.subarray(out.act.off >>> 2, (out.act.off >>> 2) + n * k),
      heap.subarray(out.grad!.off >>> 2, (out.grad!.off >>> 2) + n * k),
      n,
      k,
    );
    out.got = 1;
    return value;
  }

  dispose(): void {
    tf.dispose(this.bufs);
    this.bufs.length = 0;
  }
}

function noop(): void {}

function isRelu(n: GraphNode): boolean {
  return n.kind === "ReLU" ||
    (n.kind === "Activation" && activationOf(n.layer as unknown as LayerInternals) === "relu");
}

/**
 * Compiled training steps of one model with one optimizer and any
 * {@linkcode LogitsLoss}: buffers are made per input shape (the last few are
 * kept); `dispose` frees them.
 *
 * @example
 * ```ts ignore
 * const trainer = CompiledTrainer.for(model, optimizer); // undefined: unsupported model
 * const loss = trainer?.step(x, l1Loss(target.dataSync())) ?? engineStep(x, target);
 * ```
 */
export class CompiledTrainer {
  private readonly cache = new Map<string, Compiled>();
  /** Input shapes the graph could not be laid out for. */
  private readonly unusable = new Set<string>();
  /** Steps run compiled so far. */
  compiledRuns = 0;

  private constructor(
    private readonly graph: Graph,
    private readonly trainable: tf.LayerVariable[],
    private readonly optimizer: tf.Optimizer,
  ) {}

  /** The trainer for `model`, or undefined when the model is not supported (see {@linkcode compiledStepSupport}). */
  static for(model: tf.LayersModel, optimizer: tf.Optimizer): CompiledTrainer | undefined {
    const g = analyse(model);
    return typeof g === "string" ? undefined : new CompiledTrainer(g, model.trainableWeights, optimizer);
  }

  /**
   * One step on the batch `x` with `loss` (forward, loss, backward, the
   * optimizer's update); returns the loss, or undefined, having done nothing,
   * when the compiled path cannot run now (see {@linkcode compiledStepAvailable};
   * also a non-float32 input or one not in the wasm heap): then take the engine path.
   */
  step(x: tf.Tensor, loss: LogitsLoss): number | undefined {
    const backend = tf.backend() as BackendWasm;
    const want = this.graph.shapes[this.graph.input];
    if (
      !compiledStepAvailable() || x.dtype !== "float32" || x.rank !== want.length ||
      want.some((s, i) => i > 0 && s !== null && s !== x.shape[i]) || !backend.dataIdMap.has(x.dataId) ||
      this.unusable.has(x.shape.join())
    ) {
      return undefined; // the engine path runs (and reports a wrong input shape in its own words)
    }
    const key = x.shape.join();
    let c = this.cache.get(key);
    if (c === undefined) {
      if (this.cache.size >= 3) {
        const [oldKey, old] = this.cache.entries().next().value as [string, Compiled];
        this.cache.delete(oldKey);
        old.dispose();
      }
      try {
        c = new Compiled(backend, runtime.dnnl!, this.graph, this.trainable, x.shape);
      } catch (e) {
        if (!(e instanceof Unsupported)) throw e;
        this.unusable.add(key); // e.g. a layer whose output shape differs at this input size: the engine decides
        return undefined;
      }
    } else {
      this.cache.delete(key);
    }
    this.cache.set(key, c);
    const value = c.run(x, loss, this.optimizer);
    this.compiledRuns++;
    return value;
  }

  /** Frees every buffer. */
  dispose(): void {
    for (const c of this.cache.values()) c.dispose();
    this.cache.clear();
  }
}

/**
 * A compiled training step for `model` with cross-entropy on logits and
 * `optimizer`, or undefined when the model is not supported (see
 * {@linkcode compiledStepSupport}). The step falls back to `fallback` (the
 * engine path) whenever the compiled path cannot run at call time (another
 * backend, native kernels switched off, a non-float32 input).
 */
export function compileTrainStep(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  fallback: Step,
): (Step & { dispose(): void; readonly compiledRuns: number }) | undefined {
  const trainer = CompiledTrainer.for(model, optimizer);
  if (trainer === undefined) return undefined;
  const step = (x: tf.Tensor, y: tf.Tensor1D): tf.Scalar => {
    const value = y.shape[0] === x.shape[0] ? trainer.step(x, crossEntropyLoss(y.dataSync())) : undefined;
    return value === undefined ? fallback(x, y) : tf.scalar(value);
  };
  // (A getter: Object.assign would copy the count once.)
  Object.defineProperty(step, "compiledRuns", { get: () => trainer.compiledRuns });
  return Object.assign(step, { dispose: () => trainer.dispose() }) as Step & {
    dispose(): void;
    readonly compiledRuns: number;
  };
}
