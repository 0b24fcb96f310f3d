/**
 * The defense a server builds from its config entry and bundle: the same
 * `buildDefense` as the runner's, meco resolved from the bundle's training
 * entry, and a clear error for a bundle without MeCo nets.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/backend/mod.ts";
import { DefenseSchema, type MecoDefenseConfig, ServeDefenseSchema } from "../../lib/config/mod.ts";
import { buildDefense } from "../../lib/defenses/build.ts";
import { mecoDefense } from "../../lib/defenses/meco.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import { perturbationNet } from "../../lib/models/perturbation.ts";
import { BUNDLE_FORMAT, type LoadedBundle } from "../../lib/serve/bundle.ts";
import { bundleBuildOptions, bundleDefenseEntry } from "../../lib/serve/serve_defense.ts";

await initBackend("wasm");

const TRAINED = DefenseSchema.parse({
  type: "meco",
  name: "meco_w4",
  gamma: 1,
  q: 1,
  alpha: 0.01,
  bound: 0.2,
  width: 4,
  epochs: 1,
  batch_size: 8,
  lr: 1e-3,
}) as MecoDefenseConfig;

/** A bundle in memory: a LeNet-5 victim and, with `meco`, a target and h trained with {@linkcode TRAINED}. */
function bundle(meco: boolean): LoadedBundle {
  const victim = lenet5({ seed: 0 });
  const nets = meco
    ? {
      target: lenet5({ seed: 1 }),
      perturb: perturbationNet({ imageShape: [28, 28, 1], width: 4, bound: 0.2, seed: 2 }),
    }
    : undefined;
  return {
    dir: meco ? "models/with_meco" : "models/victim_only",
    meta: {
      format: BUNDLE_FORMAT,
      dataset: "mnist",
      image_shape: [28, 28, 1],
      num_classes: 10,
      arch: "lenet5",
      victim_acc: 0.1,
      meco: meco ? { config: TRAINED, acc: 0.1, l1: 0 } : null,
      source: { config: "c.yaml", profile: "smoke", config_hash: "h", seed: 0, commit: "c", command: "x" },
      created: "2026-01-01T00:00:00Z",
    },
    victim,
    ...(nets !== undefined ? { meco: nets } : {}),
    dispose: () => [victim, nets?.target, nets?.perturb].forEach((m) => m?.dispose()),
  };
}

const images = (n: number) => tf.randomUniform([n, 28, 28, 1], -1, 1, "float32", 3) as tf.Tensor4D;

Deno.test("serving meco: the bundle's training entry under the serving label, answering as mecoDefense", () => {
  const b = bundle(true);
  const x = images(3);
  try {
    const { name: _label, ...trained } = TRAINED;
    assert.deepEqual(bundleDefenseEntry(ServeDefenseSchema.parse({ type: "meco" }), b), trained);
    const entry = bundleDefenseEntry(ServeDefenseSchema.parse({ type: "meco", name: "served" }), b);
    assert.deepEqual(entry, { ...trained, name: "served" });
    const served = buildDefense(entry, b.victim, bundleBuildOptions(b, 11));
    const direct = mecoDefense(b.meco!, { seed: 11, variant: "paper", width: 4, bound: 0.2 });
    assert.equal(served.name, "served");
    const [s, d] = [served.predict(x), direct.predict(x)];
    assert.deepEqual(s.arraySync(), d.arraySync());
    tf.dispose([s, d]);
  } finally {
    x.dispose();
    b.dispose();
  }
});

Deno.test("serving: other defenses are their entry as written, built around the bundle's victim", () => {
  const b = bundle(false);
  const x = images(3);
  try {
    for (const raw of [{ type: "none" }, { type: "randp", eps: 1 }, { type: "mad", eps: 1 }]) {
      const cfg = ServeDefenseSchema.parse(raw);
      assert.equal(bundleDefenseEntry(cfg, b), cfg);
      const served = buildDefense(bundleDefenseEntry(cfg, b), b.victim, bundleBuildOptions(b, 4));
      const direct = buildDefense(DefenseSchema.parse(raw), b.victim, {
        seed: 4,
        imageShape: [28, 28, 1],
        numClasses: 10,
        arch: "lenet5",
      });
      const [s, d] = [served.predict(x), direct.predict(x)];
      assert.deepEqual(s.arraySync(), d.arraySync(), cfg.type);
      tf.dispose([s, d]);
      served.dispose();
      direct.dispose();
    }
  } finally {
    x.dispose();
    b.dispose();
  }
});

Deno.test("serving meco from a bundle without MeCo nets is an error naming the bundle", () => {
  const b = bundle(false);
  try {
    assert.throws(
      () => bundleDefenseEntry(ServeDefenseSchema.parse({ type: "meco" }), b),
      /bundle models\/victim_only has no MeCo nets \(defense: meco\); export it from a config with a meco defense/,
    );
  } finally {
    b.dispose();
  }
});
