/**
 * Writing a model bundle: it holds the models the defense protects, so every
 * file and directory of it is owner-only, and it loads back whole.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { BUNDLE_FORMAT, type BundleMeta, loadBundle, writeBundle } from "../../lib/serve/bundle.ts";

function tinyModel(seed: number): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.flatten({ inputShape: [2, 2, 1] }));
  m.add(tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed }) }));
  return m;
}

const META: BundleMeta = {
  format: BUNDLE_FORMAT,
  dataset: "mnist",
  image_shape: [2, 2, 1],
  num_classes: 3,
  arch: "tiny",
  victim_acc: 0.5,
  meco: null,
  source: { config: "c.yaml", profile: "smoke", config_hash: "h", seed: 0, commit: "c", command: "cmd" },
  created: "2020-01-01T00:00:00.000Z",
};

/** Every path under `root` (itself included) with its permission bits. */
async function modes(root: string): Promise<[string, number][]> {
  const out: [string, number][] = [[root, (await Deno.stat(root)).mode! & 0o777]];
  for await (const e of Deno.readDir(root)) {
    const p = `${root}/${e.name}`;
    if (e.isDirectory) out.push(...await modes(p));
    else out.push([p, (await Deno.stat(p)).mode! & 0o777]);
  }
  return out;
}

Deno.test("bundle: every file and directory is created owner-only, also when replacing a bundle", async () => {
  await tf.setBackend("cpu");
  const dir = await Deno.makeTempDir({ prefix: "meco-bundle-" });
  const old = Deno.umask(0o022);
  const models = { victim: tinyModel(1), meco: { target: tinyModel(2), perturb: tinyModel(3) } };
  try {
    const out = `${dir}/models/b`;
    for (const round of [1, 2]) {
      await writeBundle(out, { ...META, meco: { config: { type: "meco" } as never, acc: 0.5, l1: 0.1 } }, models);
      const found = await modes(out);
      assert.ok(found.length >= 9, `round ${round}: ${found.map(([p]) => p).join(", ")}`);
      for (const [p, mode] of found) {
        const isDir = (await Deno.stat(p)).isDirectory;
        assert.equal(mode, isDir ? 0o700 : 0o600, `round ${round}: ${p} has mode ${mode.toString(8)}`);
      }
    }
    const b = await loadBundle(out);
    try {
      assert.equal(b.meta.arch, "tiny");
      assert.ok(b.meco !== undefined);
      const x = tf.ones([1, 2, 2, 1]);
      assert.deepEqual(
        (b.victim.predict(x) as tf.Tensor).arraySync(),
        (models.victim.predict(x) as tf.Tensor).arraySync(),
      );
    } finally {
      b.dispose();
    }
  } finally {
    Deno.umask(old);
    models.victim.dispose();
    models.meco.target.dispose();
    models.meco.perturb.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
