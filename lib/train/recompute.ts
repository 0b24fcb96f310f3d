/**
 * Gradients through a chain of model pieces that keep at most one piece's
 * activations at a time ("gradient checkpointing"): a forward pass without a
 * tape keeps only the outputs of the pieces; then, from the last piece to the
 * first, each piece is run again on a tape from its stored input and
 * backpropagated with the gradient the next piece passed back. A tape over the
 * whole chain holds every activation of every piece; this holds the pieces'
 * outputs and one piece's tape, for one more forward pass of the chain.
 *
 * BatchNorm in training mode updates its moving statistics on every forward
 * pass; the passes without a tape put them back afterwards, so every layer
 * updates them exactly once per gradient, from the same batch statistics as on
 * a single tape. Pieces must be deterministic (no dropout): the recomputed pass
 * must equal the first.
 *
 * {@linkcode modelSegments} cuts a one-input functional model (a ResNet, at its
 * blocks) into such pieces, sharing its layers and weights.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** A link of a chain: a deterministic function of the previous link's output, and the variables it reads. */
export interface Piece {
  /** The piece's output from its input (the chain's input for the first piece). */
  run: (input: tf.Tensor) => tf.Tensor;
  /** The trainable variables it reads. */
  vars: tf.Variable[];
}

/** What {@linkcode chainGrads} returns. */
export interface ChainGrads {
  /** The head's value. */
  value: tf.Scalar;
  /** Gradients of the head's value by variable name (variables the value does not depend on are absent). */
  grads: tf.NamedTensorMap;
}

/** Copies of the models' non-trainable weights (BatchNorm's moving statistics). */
function saveMovingStats(models: tf.LayersModel[]): tf.Tensor[] {
  return models.flatMap((m) => m.nonTrainableWeights.map((w) => tf.clone(w.read())));
}

/** Writes back what {@linkcode saveMovingStats} copied, and frees the copies. */
function restoreMovingStats(models: tf.LayersModel[], saved: tf.Tensor[]): void {
  let i = 0;
  for (const m of models) for (const w of m.nonTrainableWeights) w.write(saved[i++]);
  tf.dispose(saved);
}

/** Adds `more` into `sum`, by variable name, freeing what it replaces. */
export function accumulateGrads(sum: tf.NamedTensorMap, more: tf.NamedTensorMap): void {
  for (const [name, g] of Object.entries(more)) {
    const prev = sum[name];
    if (prev === undefined) sum[name] = g;
    else {
      sum[name] = tf.add(prev, g);
      tf.dispose([prev, g]);
    }
  }
}

/**
 * The chain's output for `input`, run piece by piece so that only one piece's
 * activations live at a time, with the moving statistics of `models` as they
 * were before (a forward pass that leaves no trace on the models).
 */
export function chainForward(pieces: Piece[], input: tf.Tensor, models: tf.LayersModel[]): tf.Tensor {
  const saved = saveMovingStats(models);
  let out = input;
  for (const p of pieces) {
    const next = tf.tidy(() => p.run(out));
    if (out !== input) out.dispose();
    out = next;
  }
  restoreMovingStats(models, saved);
  return out;
}

/**
 * The value of `head(chain(input))` and its gradients with respect to the
 * pieces' variables (`input` is a constant). With `recompute` false, one tape
 * over the whole chain; with it true, one piece's tape at a time (see the
 * module's text); the two agree up to rounding. `models` are those whose
 * BatchNorm statistics the pieces update.
 */
export function chainGrads(
  pieces: Piece[],
  input: tf.Tensor,
  head: (out: tf.Tensor) => tf.Scalar,
  opts: { recompute: boolean; models: tf.LayersModel[] },
): ChainGrads {
  const all = [...new Set(pieces.flatMap((p) => p.vars))];
  if (!opts.recompute || pieces.length < 2) {
    return tf.variableGrads(() => head(pieces.reduce((t, p) => p.run(t), input)), all);
  }
  const saved = saveMovingStats(opts.models);
  const inputs: tf.Tensor[] = [input];
  for (const p of pieces.slice(0, -1)) inputs.push(tf.tidy(() => p.run(inputs[inputs.length - 1])));
  restoreMovingStats(opts.models, saved);
  const grads: tf.NamedTensorMap = {};
  // The last piece with the head on one tape, then each piece with the gradient at its output.
  let value: tf.Scalar | undefined;
  let upstream: tf.Tensor | undefined;
  for (let k = pieces.length - 1; k >= 0; k--) {
    const p = pieces[k];
    const x = k > 0 ? tf.variable(inputs[k], true) : undefined;
    const vars = x === undefined ? p.vars : [...p.vars, x];
    if (vars.length === 0) break; // the first piece reads no variable: nothing left to take
    const r = tf.variableGrads(() => {
      const out = p.run(x ?? input);
      if (upstream === undefined) return head(out);
      return tf.sum(tf.mul(out, upstream)) as tf.Scalar;
    }, vars);
    upstream?.dispose();
    if (value === undefined) value = r.value;
    else r.value.dispose();
    if (x !== undefined) {
      upstream = r.grads[x.name];
      delete r.grads[x.name];
      x.dispose();
      inputs[k].dispose();
    } else upstream = undefined;
    accumulateGrads(grads, r.grads);
  }
  upstream?.dispose();
  return { value: value!, grads };
}

type Sym = tf.SymbolicTensor;

/** Output elements of a symbolic tensor per example. */
function perExample(t: Sym): number {
  return t.shape.slice(1).reduce((a: number, b) => a * (b ?? 1), 1);
}

/**
 * The bytes of every layer output of `model` for a batch of `batch` (a lower
 * bound on what a tape over one pass holds; tfjs keeps about two to three
 * times as much).
 */
export function activationBytes(model: tf.LayersModel, batch: number): number {
  return 4 * batch *
    model.layers.reduce(
      (s, l) =>
        s + l.inboundNodes.slice(0, 1).reduce((a, n) => a + n.outputTensors.reduce((b, t) => b + perExample(t), 0), 0),
      0,
    );
}

/** The nodes computing `model`'s output, in topological order (inputs first). */
function graphNodes(model: tf.LayersModel): { node: tf.layers.Layer["inboundNodes"][number]; out: Sym }[] {
  const order: { node: tf.layers.Layer["inboundNodes"][number]; out: Sym }[] = [];
  const seen = new Set<number>();
  const visit = (t: Sym) => {
    if (seen.has(t.id)) return;
    seen.add(t.id);
    const node = t.sourceLayer.inboundNodes[t.nodeIndex];
    for (const i of node.inputTensors) visit(i);
    if (node.outputTensors.length !== 1) throw new Error(`layer ${t.sourceLayer.name} has several outputs`);
    order.push({ node, out: t });
  };
  visit(model.outputs[0]);
  return order;
}

/**
 * Cuts a functional model with one input and one output into about
 * `segments` consecutive sub-models of similar activation size, at tensors
 * through which the whole computation passes (a ResNet's block outputs).
 * The sub-models share the model's layers and weights; applied in order they
 * compute the model. A model with no such cut comes back whole.
 */
export function modelSegments(model: tf.LayersModel, segments: number): tf.LayersModel[] {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new Error(`modelSegments: ${model.name} must have one input and one output`);
  }
  const nodes = graphNodes(model);
  const index = new Map(nodes.map((n, i) => [n.out.id, i]));
  // lastUse[i]: the last node that reads node i's output.
  const lastUse = nodes.map(() => -1);
  nodes.forEach(({ node }, j) => node.inputTensors.forEach((t) => lastUse[index.get(t.id)!] = j));
  // A cut after node i: nothing computed up to i but node i's output is read after i.
  const cuts: number[] = [];
  let reach = -1; // the last node that reads any output computed before node i
  for (let i = 0; i < nodes.length - 1; i++) {
    if (i > 0 && reach <= i) cuts.push(i);
    reach = Math.max(reach, lastUse[i]);
  }
  const sizes = nodes.map((n) => perExample(n.out));
  const total = sizes.reduce((a, b) => a + b, 0);
  const chosen: number[] = [];
  let acc = 0, from = 0;
  for (const c of cuts) {
    for (let i = from; i <= c; i++) acc += sizes[i];
    from = c + 1;
    if (acc >= total / segments && chosen.length < segments - 1) {
      chosen.push(c);
      acc = 0;
    }
  }
  if (chosen.length === 0) return [model];
  const bounds = [0, ...chosen, nodes.length - 1];
  const parts: tf.LayersModel[] = [];
  for (let s = 0; s + 1 < bounds.length; s++) {
    const start = nodes[bounds[s]].out;
    const input = tf.input({ shape: start.shape.slice(1) as number[] });
    const map = new Map<number, Sym>([[start.id, input]]);
    for (let i = bounds[s] + 1; i <= bounds[s + 1]; i++) {
      const { node, out } = nodes[i];
      const args = node.inputTensors.map((t) => {
        const m = map.get(t.id);
        if (m === undefined) throw new Error(`modelSegments: ${out.sourceLayer.name} reads across a cut`);
        return m;
      });
      map.set(out.id, node.outboundLayer.apply(args.length === 1 ? args[0] : args, node.callArgs) as Sym);
    }
    parts.push(
      tf.model({ inputs: input, outputs: map.get(nodes[bounds[s + 1]].out.id)!, name: `${model.name}_part${s}` }),
    );
  }
  return parts;
}
