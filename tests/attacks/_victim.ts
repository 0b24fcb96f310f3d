/**
 * Test fixtures: a quickly trained LeNet-5 MNIST victim and MNIST test images, all in [-1, 1]; a black box over a
 * model or defense for MNIST-shaped queries; a model's weights as one array; an attack crashed mid-run with its
 * checkpoint, and the check that a resumed run equals an uninterrupted one.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import type { Attack, AttackContext, AttackResult } from "../../lib/attacks/attack.ts";
import { checkpointQueries } from "../../lib/attacks/checkpoint.ts";
import { type Dataset, loadDataset, subset, toSignedRange } from "../../lib/data/mod.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import { accuracy, predictorOf } from "../../lib/metrics/accuracy.ts";
import { fit } from "../../lib/train/fit.ts";
import { type Defense, undefended } from "../../lib/defenses/mod.ts";
import { BlackBox, type LabelMode } from "../../lib/victim/mod.ts";

/** A LeNet-5 trained for one epoch on 10k MNIST images, and 1000 MNIST test images. */
export async function mnistVictim(): Promise<{ victim: tf.LayersModel; test: Dataset; victimAcc: number }> {
  const train = toSignedRange(subset(await loadDataset("mnist", "train"), 10_000, { seed: 0 }));
  const test = toSignedRange(subset(await loadDataset("mnist", "test"), 1000, { seed: 0 }));
  const victim = lenet5({ seed: 0 });
  await fit(victim, train, { epochs: 1, batchSize: 64, optimizer: "sgd", lr: 0.05, momentum: 0.9, seed: 0 });
  return { victim, test, victimAcc: accuracy(predictorOf(victim), test) };
}

/** A black box answering 28×28×1 images over 10 classes from `source` (a defense, or a model undefended). */
export function mnistBox(
  source: Defense | tf.LayersModel,
  budget: number,
  labels: LabelMode = "soft",
  spent = 0,
): BlackBox {
  const defense = source instanceof tf.LayersModel ? undefended(source) : source;
  return new BlackBox(defense, { imageShape: [28, 28, 1], numClasses: 10, budget, labels, spent });
}

/** All of a model's weights, concatenated. */
export function flatWeights(model: tf.LayersModel): Float32Array {
  return tf.tidy(() => tf.concat(model.getWeights().map((w) => w.flatten())).dataSync() as Float32Array);
}

/**
 * Runs `attack` with a fresh checkpoint directory and crashes it when its progress reaches `iteration`: the
 * directory and the queries its last checkpoint holds.
 */
export async function crashedRun(
  attack: Attack,
  box: BlackBox,
  budget: number,
  ctx: AttackContext,
  iteration: number,
): Promise<{ dir: string; spent: number }> {
  const dir = await Deno.makeTempDir();
  class Crash extends Error {}
  await assert.rejects(
    () =>
      attack.extract(box, budget, {
        ...ctx,
        checkpointDir: dir,
        onProgress: (p) => {
          if (p.iteration === iteration) throw new Crash();
        },
      }),
    Crash,
  );
  return { dir, spent: await checkpointQueries(dir) };
}

/** A resumed run's result equals the uninterrupted one's: its queries, its curve and its clone, bit for bit. */
export function assertSameRun(whole: AttackResult, resumed: AttackResult): void {
  assert.equal(resumed.queries, whole.queries);
  assert.deepEqual(resumed.curve, whole.curve);
  const a = flatWeights(whole.clone), b = flatWeights(resumed.clone);
  assert.equal(a.length, b.length);
  assert.ok(a.every((v, i) => v === b[i]), "the resumed clone differs from the uninterrupted one");
}
