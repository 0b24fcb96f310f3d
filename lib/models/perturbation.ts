/**
 * MeCo's data-dependent random input perturbation h_ω(x, ε): a small ResNet
 * whose input is the image with Gaussian noise ε ~ N(0, I) stacked as extra
 * channels, and whose output is a perturbation of the image's shape bounded
 * in L∞ by `bound`. Layout: conv3×3(w) → BN → ReLU → 2 × BasicBlock(w) →
 * conv3×3(channels) → BN without affine → tanh · bound, with w = 64 in the
 * paper. A BatchNorm followed by ReLU is one layer (`batchNorm({ relu: true })`,
 * one fused kernel in training mode, as in the ResNets).
 *
 * The batch-normalised output (as in the official code's perturbation
 * network) fixes the perturbation's scale: Algorithm 1's loss,
 * L(T(x_Q + h), y) + γ‖T(x + h) − T(x)‖₁, is minimised by h ≡ 0, and with a
 * free-magnitude output the trained h did collapse (MNIST, 300K-query DFME:
 * L1 0.004 and no protection). With it, h keeps a fixed-size, ε-dependent
 * perturbation that training can only shape (where and in which direction),
 * while T learns to be robust to it on the data.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { MecoBatchNorm } from "./batch_norm.ts";
import { batchNorm, frozenAffineBatchNorm, SeedStream, torchWeightInit } from "./init.ts";

/** Version of h and of MeCo training; part of cached MeCo cells' keys, bumped whenever either changes. */
export const PERTURBATION_NET_VERSION = 3;

/** Options for {@linkcode perturbationNet}. */
export interface PerturbationOptions {
  /** Image shape [h, w, c]. */
  imageShape: [number, number, number];
  /** Filters per conv (paper: 64). */
  width: number;
  /** L∞ bound of the output perturbation. */
  bound: number;
  /** Initialisation seed. */
  seed: number;
}

type S = tf.SymbolicTensor;

/** Multiplies by a constant (a serialisable stand-in for a Lambda layer). */
class Scale extends tf.layers.Layer {
  static className = "MecoScale";
  readonly factor: number;
  constructor(args: { factor: number; name?: string }) {
    super(args);
    this.factor = args.factor;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.mul(Array.isArray(inputs) ? inputs[0] : inputs, this.factor);
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), factor: this.factor };
  }
}
tf.serialization.registerClass(Scale);

/**
 * Builds h_ω: a model with inputs `[x, eps]` (both [n, h, w, c]) and output δ
 * with ‖δ‖∞ ≤ bound.
 *
 * @example
 * ```ts ignore
 * const h = perturbationNet({ imageShape: [28, 28, 1], width: 64, bound: 0.1, seed: 0 });
 * const delta = h.apply([x, tf.randomNormal(x.shape)]) as tf.Tensor;
 * ```
 */
export function perturbationNet(opts: PerturbationOptions): tf.LayersModel {
  const s = new SeedStream(opts.seed);
  const [h, w, c] = opts.imageShape;
  const conv = (filters: number) =>
    tf.layers.conv2d({
      filters,
      kernelSize: 3,
      padding: "same",
      useBias: false,
      kernelInitializer: torchWeightInit(s),
    });
  const x = tf.input({ shape: [h, w, c], name: "x" });
  const eps = tf.input({ shape: [h, w, c], name: "eps" });
  let y = tf.layers.concatenate({ axis: -1 }).apply([x, eps]) as S;
  y = batchNorm({ relu: true }).apply(conv(opts.width).apply(y)) as S;
  for (let b = 0; b < 2; b++) {
    let o = batchNorm({ relu: true }).apply(conv(opts.width).apply(y)) as S;
    o = batchNorm().apply(conv(opts.width).apply(o)) as S;
    y = tf.layers.reLU().apply(tf.layers.add().apply([o, y])) as S;
  }
  y = frozenAffineBatchNorm().apply(conv(c).apply(y)) as S;
  y = tf.layers.activation({ activation: "tanh" }).apply(y) as S;
  y = new Scale({ factor: opts.bound }).apply(y) as S;
  return tf.model({ inputs: [x, eps], outputs: y, name: "meco_perturbation" });
}

/** The weights of one convolution with the inference-mode BatchNorm after it folded in: kernel · s, bias β − μ·s. */
interface FoldedConv {
  kernel: tf.Tensor4D;
  bias: tf.Tensor1D;
}

type Variable = { read(): tf.Tensor };
/** Fields of tfjs's BatchNormalization that its typings mark private. */
interface BatchNormInternals {
  epsilon: number;
  gamma: Variable;
  beta: Variable;
  movingMean: Variable;
  movingVariance: Variable;
}

function fold(conv: tf.layers.Layer, bn: tf.layers.Layer): FoldedConv {
  const b = bn as unknown as BatchNormInternals;
  return tf.tidy(() => {
    const scale = tf.div(b.gamma.read(), tf.sqrt(tf.add(b.movingVariance.read(), b.epsilon)));
    return {
      kernel: tf.mul(conv.getWeights()[0], scale) as tf.Tensor4D,
      bias: tf.sub(b.beta.read(), tf.mul(b.movingMean.read(), scale)) as tf.Tensor1D,
    };
  });
}

/**
 * h_ω in inference mode, as {@linkcode perturbationNet} builds it, computed with every BatchNorm folded into the
 * convolution before it and the ReLUs that follow a convolution fused into it: six convolutions and two residual
 * additions instead of twenty layers (the BatchNorm and ReLU passes over full-size activations were half of a
 * MeCo-defended query's time). Equal to `perturb.apply([x, eps], {training: false})` up to rounding
 * (tests/models/perturbation_test.ts). The weights are read on every call, so a model trained further is never
 * answered with stale ones. Undefined when `perturb` is not laid out as {@linkcode perturbationNet} builds it.
 *
 * With `differentiable`, the form for gradients with respect to the inputs (MeCo's SVGD step): every intermediate
 * is left to the caller's scope (a tape reads them), each convolution's gradient is its input gradient alone (the
 * weights are constants: no filter, bias or BatchNorm parameter gradients are computed), and ReLUs are kernels of
 * their own.
 *
 * @example
 * ```ts ignore
 * const h = perturbationInference(perturb)!;
 * const delta = h(x, tf.randomNormal(x.shape)); // as perturb.apply([x, eps], { training: false })
 * ```
 */
export function perturbationInference(
  perturb: tf.LayersModel,
  opts: { differentiable?: boolean } = {},
): ((x: tf.Tensor4D, eps: tf.Tensor4D) => tf.Tensor4D) | undefined {
  // A BatchNorm with its ReLU fused reads as the two layers it replaces (models saved before the fusion have both).
  const kinds = perturb.layers.flatMap((l) =>
    l instanceof MecoBatchNorm && l.relu ? ["MecoBatchNorm", "ReLU"] : [l.getClassName()]
  );
  const convs = perturb.layers.filter((l) => l.getClassName() === "Conv2D");
  const bns = perturb.layers.filter((l) => l.getClassName() === "MecoBatchNorm");
  const scale = perturb.layers.find((l) => l instanceof Scale) as Scale | undefined;
  const expected = [
    ...["InputLayer", "InputLayer", "Concatenate", "Conv2D", "MecoBatchNorm", "ReLU"],
    ...[1, 2].flatMap(() => ["Conv2D", "MecoBatchNorm", "ReLU", "Conv2D", "MecoBatchNorm", "Add", "ReLU"]),
    ...["Conv2D", "MecoBatchNorm", "Activation", "MecoScale"],
  ];
  if (kinds.join() !== expected.join() || scale === undefined) return undefined;
  // Each convolution as perturbationNet builds it: no bias, stride 1, "same", no dilation, no activation; tanh at the end.
  const plain = (l: tf.layers.Layer) => {
    const c = l.getConfig();
    return c.useBias === false && String(c.strides) === "1,1" && c.padding === "same" &&
      String(c.dilationRate) === "1,1" && c.activation === "linear" && c.dataFormat === "channelsLast";
  };
  const tanh = perturb.layers.find((l) => l.getClassName() === "Activation")!.getConfig().activation === "tanh";
  if (!convs.every(plain) || !tanh) return undefined;
  const conv = (x: tf.Tensor4D, f: FoldedConv, relu: boolean) =>
    tf.fused.conv2d({
      x,
      filter: f.kernel,
      strides: 1,
      pad: "same",
      bias: f.bias,
      activation: relu ? "relu" : "linear",
    });
  // A convolution whose gradient is the input's alone: the weights are constants here, and tfjs's fused
  // convolution would compute its filter and bias gradients too. The ReLU stays a kernel of its own, whose gradient
  // is one pass.
  const inputOnly = (x: tf.Tensor4D, f: FoldedConv, relu: boolean): tf.Tensor4D => {
    const y = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [input, save] = args as [tf.Tensor4D, tf.GradSaveFunc];
      save([f.kernel]);
      return {
        value: tf.fused.conv2d({ x: input, filter: f.kernel, strides: 1, pad: "same", bias: f.bias }),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf.conv2dTranspose(dy as tf.Tensor4D, saved[0] as tf.Tensor4D, input.shape, 1, "same"),
      };
    })(x) as tf.Tensor4D;
    return relu ? tf.relu(y) : y;
  };
  const differentiable = opts.differentiable === true;
  const layer = differentiable ? inputOnly : conv;
  // For inference each stage runs in its own tidy, the previous activation freed as soon as the next exists: at most
  // two full-size activations and a stage's intermediates are alive at once, as when the layers run. For gradients
  // every intermediate (the folded weights too) is left to the caller's scope, where a tape reads them.
  const scoped = (g: () => tf.Tensor4D): tf.Tensor4D => differentiable ? g() : tf.tidy(g);
  const stage = (y: tf.Tensor4D, next: (y: tf.Tensor4D) => tf.Tensor4D): tf.Tensor4D => {
    const out = scoped(() => next(y));
    if (!differentiable) y.dispose();
    return out;
  };
  return (x, eps) => {
    const f = convs.map((c, i) => fold(c, bns[i]));
    try {
      let y = scoped(() => layer(tf.concat4d([x, eps], -1), f[0], true));
      for (const i of [1, 3]) y = stage(y, (y) => tf.relu(tf.add(layer(layer(y, f[i], true), f[i + 1], false), y)));
      return stage(y, (y) => tf.mul(tf.tanh(layer(y, f[5], false)), scale.factor));
    } finally {
      if (!differentiable) { for (const { kernel, bias } of f) tf.dispose([kernel, bias]); }
    }
  };
}
