/**
 * Adam exactly as `torch.optim.Adam` (no weight decay, no amsgrad): epsilon
 * 1e-8 added to the bias-corrected root of the second moment, bias
 * corrections computed from the step count in double precision. tfjs's own
 * Adam defaults to epsilon 1e-7 and keeps the bias corrections as running
 * float32 products, which a restored optimizer recomputes differently; this
 * one's state is only (step, m, v), so a resumed run repeats exactly.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ADAM_UPDATE, fusedUpdateAvailable } from "../backend/mod.ts";

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
        // One pass per variable on the wasm heap (lib/backend/native/optimizer_update.ts).
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
