/**
 * Optimizers with PyTorch's semantics, and learning-rate schedules:
 * {@linkcode TorchSGD} (`torch.optim.SGD`: momentum, coupled weight decay),
 * {@linkcode TorchAdam} (`torch.optim.Adam`), {@linkcode makeOptimizer} to
 * make either from settings, and the schedules {@linkcode stepLr}
 * (multi-step decay) and {@linkcode cosineLr} (cosine annealing). Where the
 * native kernels run the wasm backend, both optimizers update each variable
 * with one fused kernel (lib/backend's `SGD_UPDATE` and `ADAM_UPDATE`) and
 * keep the same state as their tfjs path, so checkpoints do not depend on it.
 *
 * TorchAdam (no weight decay, no amsgrad): epsilon 1e-8 added to the
 * bias-corrected root of the second moment, bias corrections computed from
 * the step count in double precision. tfjs's own Adam defaults to epsilon
 * 1e-7 and keeps the bias corrections as running float32 products, which a
 * restored optimizer recomputes differently; this one's state is only
 * (step, m, v), so a resumed run repeats exactly.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ADAM_UPDATE, fusedUpdateAvailable, SGD_UPDATE } from "../backend/mod.ts";

/**
 * `torch.optim.SGD(params, lr, momentum, weight_decay)`: momentum with the
 * weight decay added to the gradient (coupled), on tfjs's MomentumOptimizer
 * (same state, so `getWeights` / `setWeights` checkpoints are tfjs's).
 *
 * @example
 * ```ts ignore
 * const opt = new TorchSGD(0.1, 0.9, 5e-4);
 * opt.applyGradients(tf.variableGrads(f, vars).grads);
 * ```
 */
export class TorchSGD extends tf.MomentumOptimizer {
  /** @param lr step size @param momentum momentum factor @param weightDecay L2 weight decay added to the gradient */
  constructor(lr: number, momentum: number, readonly weightDecay: number) {
    super(lr, momentum);
  }
  override dispose(): void {
    super.dispose();
    // tfjs's MomentumOptimizer keeps -lr as a scalar tensor (`c`) that its dispose() leaves behind.
    const c = (this as unknown as { c?: tf.Tensor }).c;
    if (c !== undefined && !c.isDisposed) c.dispose();
  }
  override applyGradients(g: Parameters<tf.MomentumOptimizer["applyGradients"]>[0]): void {
    const list: { name: string; tensor: tf.Tensor }[] = Array.isArray(g)
      ? g
      : Object.entries(g).map(([name, tensor]) => ({ name, tensor }));
    if (this.#applyFused(list)) return;
    if (this.weightDecay === 0) return super.applyGradients(g);
    const decayed = tf.tidy(() =>
      list.map(({ name, tensor }) => {
        const v = tf.engine().registeredVariables[name];
        return { name, tensor: v ? tf.add(tensor, tf.mul(v, this.weightDecay)) : tensor };
      })
    );
    super.applyGradients(decayed);
    tf.dispose(decayed.filter((d, i) => d.tensor !== list[i].tensor).map((d) => d.tensor));
  }
  /**
   * The same update as one fused kernel per variable (`SGD_UPDATE` of lib/backend), keeping
   * tfjs's accumulator bookkeeping so getWeights/setWeights (checkpoints) are unchanged. False when the
   * kernel is not available for these tensors (then nothing was done).
   */
  #applyFused(list: { name: string; tensor: tf.Tensor }[]): boolean {
    const vars = list.map(({ name }) => tf.engine().registeredVariables[name]);
    if (list.some((l) => l.tensor == null)) return false; // tfjs allows missing gradients: the unfused path skips them
    if (vars.some((v) => v === undefined) || !fusedUpdateAvailable(SGD_UPDATE, ...vars, ...list.map((l) => l.tensor))) {
      return false;
    }
    const self = this as unknown as {
      accumulations: { originalName: string; variable: tf.Variable }[];
      momentum: number;
    };
    list.forEach(({ name, tensor }, i) => {
      const value = vars[i];
      if (self.accumulations[i] == null) {
        self.accumulations[i] = {
          originalName: `${name}/momentum`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        };
      }
      const acc = self.accumulations[i].variable;
      const out = tf.engine().runKernel(
        SGD_UPDATE,
        { param: value, buf: acc, grad: tensor },
        { lr: this.learningRate, momentum: self.momentum, weightDecay: this.weightDecay },
      ) as tf.Tensor[];
      value.assign(out[0]);
      acc.assign(out[1]);
      tf.dispose(out);
    });
    this.incrementIterations();
    return true;
  }
}

/** A named tensor, as optimizers' `getWeights` lists them. */
export interface NamedTensor {
  /** Variable (or state) name. */
  name: string;
  /** The value. */
  tensor: tf.Tensor;
}

/**
 * `torch.optim.Adam(params, lr, betas=(beta1, beta2), eps)`.
 *
 * @example
 * ```ts ignore
 * const opt = new TorchAdam(1e-4);
 * opt.applyGradients(tf.variableGrads(f, vars).grads);
 * ```
 */
export class TorchAdam extends tf.Optimizer {
  /** Class name for tfjs serialization. */
  static readonly className = "TorchAdam";
  #m: tf.Variable[] = [];
  #v: tf.Variable[] = [];
  #names: string[] = [];

  /**
   * An optimizer with no moment estimates yet (they are created at a variable's first step).
   *
   * @param learningRate step size (mutable: schedules set it)
   * @param beta1 first-moment decay
   * @param beta2 second-moment decay
   * @param epsilon added to the denominator
   */
  constructor(public learningRate: number, readonly beta1 = 0.9, readonly beta2 = 0.999, readonly epsilon = 1e-8) {
    super();
  }

  /** One Adam step for the variables named in `variableGradients`. */
  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const list = Array.isArray(variableGradients)
      ? variableGradients
      : Object.entries(variableGradients).map(([name, tensor]) => ({ name, tensor }));
    this.incrementIterations();
    const t = this.iterations;
    const stepSize = this.learningRate / (1 - this.beta1 ** t);
    const rootBc2 = Math.sqrt(1 - this.beta2 ** t);
    list.forEach(({ name, tensor: g }, i) => {
      const p = tf.engine().registeredVariables[name];
      if (this.#m[i] === undefined) {
        this.#names[i] = name;
        this.#m[i] = tf.tidy(() => tf.zerosLike(p).variable(false));
        this.#v[i] = tf.tidy(() => tf.zerosLike(p).variable(false));
      }
      if (g == null) return;
      if (fusedUpdateAvailable(ADAM_UPDATE, p, g)) {
        // One pass per variable on the wasm heap (`ADAM_UPDATE` of lib/backend).
        const out = tf.engine().runKernel(
          ADAM_UPDATE,
          { param: p, m: this.#m[i], v: this.#v[i], grad: g },
          { beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon, stepSize, rootBc2 },
        ) as tf.Tensor[];
        p.assign(out[0]);
        this.#m[i].assign(out[1]);
        this.#v[i].assign(out[2]);
        tf.dispose(out);
        return;
      }
      tf.tidy(() => {
        const m = tf.add(tf.mul(this.#m[i], this.beta1), tf.mul(g, 1 - this.beta1));
        const v = tf.add(tf.mul(this.#v[i], this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        const denom = tf.add(tf.div(tf.sqrt(v), rootBc2), this.epsilon);
        p.assign(tf.sub(p, tf.mul(tf.div(m, denom), stepSize)));
        this.#m[i].assign(m);
        this.#v[i].assign(v);
      });
    });
  }

  /** The step count, then every first moment, then every second moment. */
  override async getWeights(): Promise<NamedTensor[]> {
    return [
      await this.saveIterations(),
      ...this.#m.map((variable, i) => ({ name: `${this.#names[i]}/m`, tensor: variable })),
      ...this.#v.map((variable, i) => ({ name: `${this.#names[i]}/v`, tensor: variable })),
    ];
  }

  /** Restores what {@linkcode getWeights} returned; the caller may dispose `weightValues` afterwards. */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const rest = await this.extractIterations(weightValues);
    tf.dispose([...this.#m, ...this.#v]);
    const k = rest.length / 2;
    this.#names = rest.slice(0, k).map((w) => w.name.replace(/\/m$/, ""));
    this.#m = rest.slice(0, k).map((w) => w.tensor.variable(false));
    this.#v = rest.slice(k).map((w) => w.tensor.variable(false));
  }

  /** Frees the moments. */
  override dispose(): void {
    super.dispose();
    tf.dispose([...this.#m, ...this.#v]);
    this.#m = [];
    this.#v = [];
  }

  /** The constructor arguments. */
  override getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }
}

/** What {@linkcode makeOptimizer} makes. */
export interface OptimizerOptions {
  /** "sgd" ({@linkcode TorchSGD}: momentum, weight decay) or "adam" ({@linkcode TorchAdam}). */
  optimizer: "sgd" | "adam";
  /** Initial learning rate. */
  lr: number;
  /** SGD momentum (default 0.9). */
  momentum?: number;
  /** L2 weight decay added to the gradient, PyTorch-style (default 0; SGD only). */
  weightDecay?: number;
}

/**
 * Makes the optimizer described by `opts`; its learning rate can be changed via `setLr`.
 *
 * @example
 * ```ts ignore
 * const { optimizer, setLr } = makeOptimizer({ optimizer: "sgd", lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
 * setLr(stepLr(0.1, 0.5, [0.5], 0.1)); // 0.01
 * ```
 */
export function makeOptimizer(opts: OptimizerOptions): { optimizer: tf.Optimizer; setLr: (lr: number) => void } {
  if (opts.optimizer === "adam") {
    const o = new TorchAdam(opts.lr);
    return { optimizer: o, setLr: (lr) => (o.learningRate = lr) };
  }
  const o = new TorchSGD(opts.lr, opts.momentum ?? 0.9, opts.weightDecay ?? 0);
  return { optimizer: o, setLr: (lr) => o.setLearningRate(lr) };
}

/** The learning rate at `progress` ∈ [0, 1] of a multi-step schedule. */
export function stepLr(lr: number, progress: number, milestones: number[] = [], gamma = 0.1): number {
  return milestones.reduce((acc, m) => (progress >= m ? acc * gamma : acc), lr);
}

/** The cosine-annealed learning rate at `progress` ∈ [0, 1] (clamped): lr · (1 + cos(π · progress)) / 2. */
export function cosineLr(lr: number, progress: number): number {
  return 0.5 * lr * (1 + Math.cos(Math.PI * Math.min(1, Math.max(0, progress))));
}
