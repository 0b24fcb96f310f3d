/**
 * Reading a layers model for the compiled training step (compiled_step.ts):
 * its graph of symbolic values and layers in execution order
 * ({@linkcode readGraph}), checked layer by layer against what the compiled
 * step supports ({@linkcode analyseModel}, {@linkcode compiledStepSupport}).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** Thrown while reading a model the compiled step does not support, or laying it out for an input shape. */
export class Unsupported extends Error {}

type Sym = tf.SymbolicTensor;
/** A node of tfjs's layer graph: one call of a layer. */
interface NodeLike {
  inputTensors: Sym[];
  outputTensors: Sym[];
}
/** A layer weight as tfjs keeps it. */
interface LayerVariableLike {
  read(): tf.Tensor;
}
/** Fields of tfjs's layers that their typings mark private. */
export interface LayerInternals {
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
export interface GraphNode {
  /** The layer. */
  layer: tf.layers.Layer;
  /** Its class name, e.g. `Conv2D`. */
  kind: string;
  /** The values it reads (indices into `ModelGraph.shapes`). */
  inputs: number[];
  /** The value it writes. */
  output: number;
}

/** The graph of a model: symbolic values (by index, shapes without the batch), nodes in execution order. */
export interface ModelGraph {
  /** Shape of each value, the batch dimension null. */
  shapes: (number | null)[][];
  /** The layers in execution order. */
  nodes: GraphNode[];
  /** The model's input value (-1 when the output does not depend on it). */
  input: number;
  /** The model's output value (the logits). */
  output: number;
}

/** Layer classes the compiled step runs. */
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

/** The activation of a layer: linear or relu (an Unsupported error for any other). */
export function activationOf(layer: LayerInternals): "linear" | "relu" {
  const a = layer.activation?.getClassName() ?? "linear";
  if (a !== "linear" && a !== "relu") throw new Unsupported(`activation ${a}`);
  return a;
}

/**
 * Reads the graph of `model` (exported for tests); throws an error naming the
 * first thing the compiled step cannot run.
 */
export function readGraph(model: tf.LayersModel): ModelGraph {
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
 * can (given oneDNN on the wasm backend; see `compiledStepAvailable` in compiled_step.ts).
 */
export function compiledStepSupport(model: tf.LayersModel): string | undefined {
  const graph = analyseModel(model);
  return typeof graph === "string" ? graph : undefined;
}

/** The checked graph of `model`, or why the compiled step cannot run it. */
export function analyseModel(model: tf.LayersModel): ModelGraph | string {
  try {
    const graph = readGraph(model);
    if (graph.input < 0) return "the output does not depend on the input";
    for (const node of graph.nodes) checkLayer(node, graph);
    const used = new Set<tf.LayerVariable>();
    for (const node of graph.nodes) for (const w of node.layer.trainableWeights) used.add(w);
    for (const w of model.trainableWeights) {
      if (!used.has(w)) throw new Unsupported(`weight ${w.name} is not in a supported layer`);
    }
    return graph;
  } catch (e) {
    if (e instanceof Unsupported) return `unsupported: ${e.message}`;
    throw e;
  }
}

/** Throws an Unsupported error naming what the compiled step cannot run of layer `node`. */
function checkLayer(node: GraphNode, graph: ModelGraph): void {
  const layer = node.layer as unknown as LayerInternals;
  const rank = graph.shapes[node.inputs[0]].length;
  const where = `layer ${node.layer.name} (${node.kind})`;
  switch (node.kind) {
    case "DepthwiseConv2D":
    case "Conv2D":
    case "MecoPaddedConv2D":
      if (node.kind === "DepthwiseConv2D" && layer.depthMultiplier !== 1) {
        throw new Unsupported(`${where}: depth multiplier ${layer.depthMultiplier}`);
      }
      if (rank !== 4 || layer.dataFormat !== "channelsLast") throw new Unsupported(`${where}: not NHWC`);
      if ((layer.dilationRate ?? [1, 1]).some((r) => r !== 1)) throw new Unsupported(`${where}: dilated`);
      activationOf(layer);
      break;
    case "MecoBatchNorm":
      if (!(layer.axis === -1 || layer.axis === rank - 1)) throw new Unsupported(`${where}: not over the last axis`);
      if (layer.gamma == null || layer.beta == null) throw new Unsupported(`${where}: without scale or offset`);
      break;
    case "ReLU":
      if (layer.maxValue != null) throw new Unsupported(`${where}: capped`);
      break;
    case "Activation":
      activationOf(layer);
      break;
    case "Add":
      if (node.inputs.some((i) => graph.shapes[i].join() !== graph.shapes[node.output].join())) {
        throw new Unsupported(`${where}: broadcasting`);
      }
      break;
    case "MaxPooling2D":
    case "AveragePooling2D":
      // Max pooling ignores padding cells in tfjs and oneDNN alike; average pooling's divisor would differ.
      if (
        rank !== 4 || layer.dataFormat !== "channelsLast" ||
        !(layer.padding === "valid" || (layer.padding === "same" && node.kind === "MaxPooling2D"))
      ) {
        throw new Unsupported(`${where}: only NHWC max pooling or valid average pooling`);
      }
      break;
    case "Concatenate":
      if (rank !== 4 || !(layer.axis === -1 || layer.axis === 3)) {
        throw new Unsupported(`${where}: not along NHWC channels`);
      }
      break;
    case "ZeroPadding2D":
      if (rank !== 4 || layer.dataFormat !== "channelsLast") throw new Unsupported(`${where}: not NHWC`);
      break;
    case "GlobalAveragePooling2D":
      if (rank !== 4 || layer.dataFormat !== "channelsLast") throw new Unsupported(`${where}: not NHWC`);
      break;
    case "Dense":
      if (rank !== 2) throw new Unsupported(`${where}: input of rank ${rank}`);
      activationOf(layer);
      break;
  }
  if (node.kind !== "Add" && node.kind !== "Concatenate" && node.inputs.length !== 1) {
    throw new Unsupported(`${where}: several inputs`);
  }
}

/** True when layer `node` is a plain ReLU (a ReLU layer, or an Activation of relu). */
export function isRelu(node: GraphNode): boolean {
  return node.kind === "ReLU" ||
    (node.kind === "Activation" && activationOf(node.layer as unknown as LayerInternals) === "relu");
}
