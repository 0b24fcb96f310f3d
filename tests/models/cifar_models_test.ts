import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { buildClassifier } from "../../lib/models/registry.ts";
import { CROSS_ENTROPY } from "../../lib/train/losses.ts";
import { makeTrainer } from "../../lib/train/trainer.ts";
import { perturbationNet } from "../../lib/models/perturbation.ts";

await initBackend("wasm");

const count = (ws: tf.LayerVariable[]) => ws.reduce((s, w) => s + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);

// Trainable parameter counts of the PyTorch reference models at width 1.0, 32×32×3 input
// (`sum(p.numel() for p in model.parameters())`): ResNet-34-8x / ResNet-18-8x in the DFME layout and
// the pytorch-cifar CIFAR forms of MobileNetV2, DenseNet121 and GoogLeNet. Computed with Debian's
// python3-torch (2.x) by /usr/bin/python3 running this snippet, which restates the reference layer
// tables in torch.nn (forward passes omitted: parameters do not depend on them):
//
//   import math, torch.nn as nn
//   def n(m): return sum(p.numel() for p in m.parameters())
//   def bn(c): return nn.BatchNorm2d(c)
//   class Basic(nn.Module):
//       def __init__(s, i, o, st):
//           super().__init__(); s.c1=nn.Conv2d(i,o,3,st,1,bias=False); s.b1=bn(o)
//           s.c2=nn.Conv2d(o,o,3,1,1,bias=False); s.b2=bn(o)
//           s.sc=nn.Sequential() if st==1 and i==o else nn.Sequential(nn.Conv2d(i,o,1,st,bias=False),bn(o))
//   def resnet8x(blocks, classes):
//       L=[nn.Conv2d(3,64,3,1,1,bias=False),bn(64)]; i=64
//       for st,(o,b) in enumerate(zip([64,128,256,512],blocks)):
//           for k in range(b): L.append(Basic(i,o,2 if k==0 and st>0 else 1)); i=o
//       L.append(nn.Linear(512,classes)); return nn.Sequential(*L)
//   class MBlock(nn.Module):
//       def __init__(s,i,o,e,st):
//           super().__init__(); p=e*i
//           s.a=nn.Sequential(nn.Conv2d(i,p,1,bias=False),bn(p),nn.Conv2d(p,p,3,st,1,groups=p,bias=False),bn(p),
//                             nn.Conv2d(p,o,1,bias=False),bn(o))
//           s.sc=nn.Sequential(nn.Conv2d(i,o,1,bias=False),bn(o)) if st==1 and i!=o else nn.Sequential()
//   def mobilenetv2(classes):
//       cfg=[(1,16,1,1),(6,24,2,1),(6,32,3,2),(6,64,4,2),(6,96,3,1),(6,160,3,2),(6,320,1,1)]
//       L=[nn.Conv2d(3,32,3,1,1,bias=False),bn(32)]; i=32
//       for e,o,b,st in cfg:
//           for k in range(b): L.append(MBlock(i,o,e,st if k==0 else 1)); i=o
//       L+= [nn.Conv2d(320,1280,1,bias=False),bn(1280),nn.Linear(1280,classes)]; return nn.Sequential(*L)
//   def densenet121(classes, g=32, blocks=(6,12,24,16)):
//       p=2*g; L=[nn.Conv2d(3,p,3,1,1,bias=False)]
//       for s,b in enumerate(blocks):
//           for k in range(b): L+= [bn(p),nn.Conv2d(p,4*g,1,bias=False),bn(4*g),nn.Conv2d(4*g,g,3,1,1,bias=False)]; p+=g
//           if s<3: o=int(math.floor(p*0.5)); L+=[bn(p),nn.Conv2d(p,o,1,bias=False)]; p=o
//       L+=[bn(p),nn.Linear(p,classes)]; return nn.Sequential(*L)
//   def inception(i,a,br,b,cr,c,pp):
//       cv=lambda x,y,k: [nn.Conv2d(x,y,k,padding=k//2),bn(y)]
//       return nn.Sequential(*cv(i,a,1),*cv(i,br,1),*cv(br,b,3),*cv(i,cr,1),*cv(cr,c,3),*cv(c,c,3),*cv(i,pp,1))
//   def googlenet(classes):
//       T=[(192,64,96,128,16,32,32),(256,128,128,192,32,96,64),(480,192,96,208,16,48,64),(512,160,112,224,24,64,64),
//          (512,128,128,256,24,64,64),(512,112,144,288,32,64,64),(528,256,160,320,32,128,128),
//          (832,256,160,320,32,128,128),(832,384,192,384,48,128,128)]
//       return nn.Sequential(nn.Conv2d(3,192,3,padding=1),bn(192),*[inception(*t) for t in T],nn.Linear(1024,classes))
//   for c in (10,100):
//       print(c, n(resnet8x([3,4,6,3],c)), n(resnet8x([2,2,2,2],c)), n(mobilenetv2(c)), n(densenet121(c)), n(googlenet(c)))
//
// The 10-class counts agree with the figures published for these models (ResNet-18 11.17M, MobileNetV2 2.30M,
// DenseNet121 6.96M, GoogLeNet 6.17M).
const TORCH_PARAMS: Record<string, { 10: number; 100: number }> = {
  resnet34_8x: { 10: 21282122, 100: 21328292 },
  resnet18_8x: { 10: 11173962, 100: 11220132 },
  mobilenet_v2: { 10: 2296922, 100: 2412212 },
  densenet121: { 10: 6956298, 100: 7048548 },
  googlenet: { 10: 6166250, 100: 6258500 },
};
const ARCHS = Object.keys(TORCH_PARAMS);

Deno.test("CIFAR architectures at width 1.0 have the PyTorch references' parameter counts", () => {
  for (const arch of ARCHS) {
    for (const classes of [10, 100] as const) {
      const m = buildClassifier(arch, { seed: 0, inputShape: [32, 32, 3], classes, width: 1 });
      try {
        assert.equal(count(m.trainableWeights), TORCH_PARAMS[arch][classes], `${arch}, ${classes} classes`);
        assert.deepEqual(m.outputs[0].shape, [null, classes], arch);
      } finally {
        m.dispose();
      }
    }
  }
});

Deno.test("CIFAR architectures: logits of shape [n, classes] at reduced width, 32×32×3 and 32×32×1 inputs", () => {
  for (const arch of ARCHS) {
    for (const inputShape of [[32, 32, 3], [32, 32, 1]] as [number, number, number][]) {
      const m = buildClassifier(arch, { seed: 1, inputShape, classes: 7, width: 0.125 });
      const shape = tf.tidy(() =>
        (m.predict(tf.randomNormal([3, ...inputShape], 0, 1, "float32", 2)) as tf.Tensor).shape
      );
      assert.deepEqual(shape, [3, 7], `${arch} ${inputShape}`);
      m.dispose();
    }
  }
});

Deno.test("width multiplier scales the models down", () => {
  for (const arch of ARCHS) {
    const full = buildClassifier(arch, { seed: 0, inputShape: [32, 32, 3], classes: 10, width: 1 });
    const small = buildClassifier(arch, { seed: 0, inputShape: [32, 32, 3], classes: 10, width: 0.25 });
    const [a, b] = [count(full.trainableWeights), count(small.trainableWeights)];
    full.dispose();
    small.dispose();
    // Convolutions scale with width² (quarter width: about 1/16 of the weights).
    assert.ok(b < a / 8, `${arch}: width 0.25 has ${b} parameters vs ${a} at 1.0`);
  }
});

Deno.test("init is seeded: same seed, same weights; other seed, other weights", () => {
  for (const arch of ARCHS) {
    const w = (seed: number) => {
      const m = buildClassifier(arch, { seed, inputShape: [32, 32, 3], classes: 10, width: 0.0625 });
      const v = tf.tidy(() => Array.from(tf.concat(m.trainableWeights.map((x) => x.read().flatten())).dataSync()));
      m.dispose();
      return v;
    };
    const a = w(5);
    assert.deepEqual(w(5), a, arch);
    assert.notDeepEqual(w(6), a, arch);
  }
});

Deno.test("every CIFAR architecture trains one SGD step on wasm: finite loss, weights move, no leaked tensors", () => {
  assert.equal(tf.getBackend(), "wasm");
  for (const arch of ARCHS) {
    const m = buildClassifier(arch, { seed: 3, inputShape: [32, 32, 3], classes: 10, width: 0.125 });
    const opt = tf.train.sgd(0.05);
    const trainer = makeTrainer(m, opt, CROSS_ENTROPY);
    const x = tf.randomNormal([4, 32, 32, 3], 0, 1, "float32", 9);
    const y = tf.tensor1d([0, 1, 2, 3], "int32");
    const before = tf.tidy(() => tf.concat(m.trainableWeights.map((v) => v.read().flatten())));
    const n0 = tf.memory().numTensors;
    const losses: number[] = [];
    for (let i = 0; i < 2; i++) {
      const loss = tf.tidy(() => trainer.step(x, y));
      losses.push(loss.dataSync()[0]);
      loss.dispose();
    }
    assert.ok(losses.every(Number.isFinite), `${arch}: losses ${losses}`);
    assert.ok(Math.abs(losses[0] - Math.log(10)) < 2, `${arch}: initial loss ${losses[0]} far from ln 10`);
    const moved = tf.tidy(() =>
      tf.max(tf.abs(tf.sub(before, tf.concat(m.trainableWeights.map((v) => v.read().flatten()))))).dataSync()[0]
    );
    assert.ok(moved > 0, `${arch}: weights did not change`);
    // The optimizer's slot variables are created on the first step; the second adds nothing.
    const n1 = tf.memory().numTensors;
    const loss = tf.tidy(() => trainer.step(x, y));
    loss.dispose();
    assert.equal(tf.memory().numTensors, n1, `${arch}: a training step leaked tensors`);
    assert.ok(n1 >= n0);
    tf.dispose([x, y, before]);
    trainer.dispose();
    opt.dispose();
    m.dispose();
  }
});

Deno.test("MeCo's perturbation network works on 32×32×3 and stays within its bound", () => {
  const h = perturbationNet({ imageShape: [32, 32, 3], width: 8, bound: 0.25, seed: 0 });
  const [shape, maxAbs] = tf.tidy(() => {
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, "float32", 1);
    const d = h.apply([x, tf.randomNormal([2, 32, 32, 3], 0, 1, "float32", 2)], { training: true }) as tf.Tensor;
    return [d.shape, tf.max(tf.abs(d)).dataSync()[0]];
  });
  assert.deepEqual(shape, [2, 32, 32, 3]);
  assert.ok(maxAbs <= 0.25 + 1e-6 && maxAbs > 0, `max |δ| = ${maxAbs}`);
  h.dispose();
});
