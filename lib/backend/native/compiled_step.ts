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
 * `compiledStepSupport` (model_graph.ts) name the reason, and
 * {@linkcode CompiledTrainer.for} gives no trainer: the caller keeps the
 * engine path.
 *
 * The results equal the engine path's up to rounding: the same oneDNN
 * primitives on the same splits, gradient contributions of a tensor used
 * twice added in the same order; the loss gradient is `(softmax − onehot)/n`
 * computed directly rather than through logSoftmax's gradient
 * (tests/backend/compiled_step_test.ts compares both paths).
 *
 * This module holds the step ({@linkcode CompiledStep}), the trainer that
 * keeps one step per input shape ({@linkcode CompiledTrainer}) and the
 * per-op profile; the model's graph is read by model_graph.ts, the step's
 * buffers are step_memory.ts, each layer's passes step_ops.ts, and the losses
 * on the logits logits_loss.ts (re-exported here).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import type { Dnnl } from "./dnnl.ts";
import { runtime } from "./runtime.ts";
import { byteOffsetOf, tensorBytes } from "./wasm_ptr.ts";
import type { LogitsLoss } from "./logits_loss.ts";
import { analyseModel, type GraphNode, isRelu, type ModelGraph, Unsupported } from "./model_graph.ts";
import { StepMemory, type Value } from "./step_memory.ts";
import { addReluOp, layerOp, namedErrors, type Op } from "./step_ops.ts";

export { crossEntropyLoss, l1Loss, type LogitsLoss, softCrossEntropyLoss } from "./logits_loss.ts";

/** Milliseconds and calls per op kind of compiled steps, while {@linkcode profileCompiledOps} records. */
export type OpTimes = Map<string, { ms: number; calls: number }>;
let opTimes: OpTimes | undefined;

/**
 * Starts timing every op of compiled steps (forward and backward of each
 * layer kind, the loss, the optimizer) into `times`; the returned function
 * stops. Used by lib/bench/profile_workloads.ts.
 */
export function profileCompiledOps(times: OpTimes): () => void {
  opTimes = times;
  return () => {
    opTimes = undefined;
  };
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

/** The step for one input shape (exported for tests; use {@linkcode CompiledTrainer}). */
export class CompiledStep {
  /** The ops, in forward order. */
  readonly ops: Op[] = [];
  /** The graph's values at this input shape, by the graph's value index. */
  readonly values: Value[] = [];
  private readonly memory: StepMemory;
  private readonly gradientList: { name: string; tensor: tf.Tensor }[] = [];
  private readonly output: Value;
  private readonly inputValue: Value;

  /**
   * Lays out `graph` for inputs of `xShape`: allocates every buffer and builds every op.
   *
   * @throws {Unsupported} when a layer cannot run at this input shape (nothing is left allocated)
   */
  constructor(
    backend: BackendWasm,
    private readonly dnnl: Dnnl,
    graph: ModelGraph,
    trainable: tf.LayerVariable[],
    xShape: number[],
  ) {
    this.memory = new StepMemory(backend, dnnl);
    try {
      this.build(graph, trainable, xShape);
    } catch (e) {
      this.dispose(); // nothing half-made is left behind
      throw e;
    }
    this.output = this.values[graph.output];
    this.inputValue = this.values[graph.input];
  }

  private build(graph: ModelGraph, trainable: tf.LayerVariable[], xShape: number[]): void {
    const memory = this.memory;
    const batch = xShape[0];
    const values: (Value | undefined)[] = [];
    // Flatten is a view: its output shares its input's buffers (and gradient contributions).
    const alias = new Map<number, number>();
    for (const node of graph.nodes) if (node.kind === "Flatten") alias.set(node.output, node.inputs[0]);
    const root = (v: number): number => alias.has(v) ? root(alias.get(v)!) : v;
    const totalUses = new Array(graph.shapes.length).fill(0);
    const consumers = new Map<number, GraphNode[]>();
    for (const node of graph.nodes) {
      if (node.kind === "Flatten") continue;
      for (const i of node.inputs) {
        totalUses[root(i)]++;
        consumers.set(root(i), [...consumers.get(root(i)) ?? [], node]);
      }
    }
    // Add followed only by ReLU (the residual join) runs as one op: no buffers for the sum itself.
    const fused = new Map<GraphNode, GraphNode>();
    const unused = new Set<number>();
    for (const node of graph.nodes) {
      const next = consumers.get(node.output);
      if (
        node.kind === "Add" && node.inputs.length === 2 && node.output !== graph.output && next?.length === 1 &&
        isRelu(next[0])
      ) {
        fused.set(node, next[0]);
        unused.add(node.output);
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
        activation: isInput ? { tensor: undefined as unknown as tf.Tensor, offset: -1 } : memory.alloc(shape),
        gradient: isInput ? undefined : memory.alloc(shape),
        uses: totalUses[v],
        received: 0,
      };
      if (totalUses[v] > 1) maxShared = Math.max(maxShared, size);
    }
    for (const [out] of alias) {
      const r = values[root(out)]!;
      const shape = [batch, ...graph.shapes[out].slice(1) as number[]];
      if (tf.util.sizeFromShape(shape) !== r.size) throw new Unsupported("flatten of a different size");
      values[out] = r;
    }
    if (maxShared > 0) memory.allocScratch(maxShared);
    this.values.push(...values as Value[]);
    for (const w of trainable) {
      const buffer = memory.allocWeightGradient(w);
      this.gradientList.push({ name: (w.read() as tf.Variable).name, tensor: buffer.tensor });
    }
    memory.refreshBase();
    const skip = new Set(fused.values());
    for (const node of graph.nodes) {
      if (node.kind === "Flatten" || skip.has(node)) continue;
      const relu = fused.get(node);
      const op = relu === undefined
        ? layerOp(memory, node, this.values)
        : addReluOp(memory, node.inputs.map((i) => this.values[i]), this.values[relu.output]);
      op.kind = relu === undefined ? node.kind : "Add+ReLU";
      this.ops.push(namedErrors(op, node.layer.name));
    }
  }

  /** The gradient buffers, one per trainable weight in the model's order (filled by {@linkcode run}). */
  get gradients(): readonly { name: string; tensor: tf.Tensor }[] {
    return this.gradientList;
  }

  /** One training step on the batch `x` with `loss` on the logits, then `optimizer`'s update; returns the loss. */
  run(x: tf.Tensor, loss: LogitsLoss, optimizer: tf.Optimizer): number {
    const memory = this.memory;
    if (tensorBytes(x) < 4 * this.inputValue.size) {
      throw new RangeError(`compiled step: input of ${x.size} values, the step was built for ${this.inputValue.size}`);
    }
    this.inputValue.activation.tensor = x;
    this.inputValue.activation.offset = byteOffsetOf(memory.backend, x);
    memory.refreshBase();
    loss.check?.(this.output.shape[0], this.output.shape[1]);
    for (const v of this.values) if (v !== undefined) v.received = 0;
    const times = opTimes;
    if (times !== undefined) return this.profiledRun(loss, optimizer, times);
    for (const op of this.ops) op.forward();
    const value = this.lossAndGradient(loss);
    try {
      for (let i = this.ops.length - 1; i >= 0; i--) this.ops[i].backward();
    } finally {
      this.dnnl.finishAsync();
    }
    optimizer.applyGradients(this.gradientList);
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
      timed("wait for the helper's last weight gradient", () => this.dnnl.finishAsync());
    }
    timed("optimizer", () => optimizer.applyGradients(this.gradientList));
    return loss;
  }

  /** Runs `loss` on the logits, which writes their gradient; returns its value. */
  private lossAndGradient(loss: LogitsLoss): number {
    const out = this.output;
    const heap = this.memory.heapFloats();
    const [n, k] = out.shape;
    const logits = out.activation.offset >>> 2, gradient = out.gradient!.offset >>> 2;
    const value = loss(heap.subarray(logits, logits + n * k), heap.subarray(gradient, gradient + n * k), n, k);
    out.received = 1;
    return value;
  }

  /** Frees every buffer. */
  dispose(): void {
    this.memory.dispose();
  }
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
  private readonly cache = new Map<string, CompiledStep>();
  /** Input shapes the graph could not be laid out for. */
  private readonly unusable = new Set<string>();
  /** Steps run compiled so far. */
  compiledRuns = 0;

  private constructor(
    private readonly graph: ModelGraph,
    private readonly trainable: tf.LayerVariable[],
    private readonly optimizer: tf.Optimizer,
  ) {}

  /** The trainer for `model`, or undefined when the model is not supported (see `compiledStepSupport`). */
  static for(model: tf.LayersModel, optimizer: tf.Optimizer): CompiledTrainer | undefined {
    const graph = analyseModel(model);
    return typeof graph === "string" ? undefined : new CompiledTrainer(graph, model.trainableWeights, optimizer);
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
    let step = this.cache.get(key);
    if (step === undefined) {
      if (this.cache.size >= 3) {
        const [oldKey, old] = this.cache.entries().next().value as [string, CompiledStep];
        this.cache.delete(oldKey);
        old.dispose();
      }
      try {
        step = new CompiledStep(backend, runtime.dnnl!, this.graph, this.trainable, x.shape);
      } catch (e) {
        if (!(e instanceof Unsupported)) throw e;
        this.unusable.add(key); // e.g. a layer whose output shape differs at this input size: the engine decides
        return undefined;
      }
    } else {
      this.cache.delete(key);
    }
    this.cache.set(key, step);
    const value = step.run(x, loss, this.optimizer);
    this.compiledRuns++;
    return value;
  }

  /** Frees every buffer. */
  dispose(): void {
    for (const step of this.cache.values()) step.dispose();
    this.cache.clear();
  }
}
