import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { BACKEND_NAMES, BackendError, initBackend } from "../../lib/backend/mod.ts";

function withEnv<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const old = Deno.env.get("MECO_BACKEND");
  if (value === undefined) Deno.env.delete("MECO_BACKEND");
  else Deno.env.set("MECO_BACKEND", value);
  return fn().finally(() => {
    if (old === undefined) Deno.env.delete("MECO_BACKEND");
    else Deno.env.set("MECO_BACKEND", old);
  });
}

async function installed(pkg: string): Promise<boolean> {
  try {
    await Deno.stat(new URL(`../../node_modules/${pkg}/package.json`, import.meta.url));
    return true;
  } catch {
    return false;
  }
}

Deno.test("auto picks the first usable backend and says why the others were skipped", async () => {
  const r = await withEnv(undefined, () => initBackend());
  assert.equal(r.source, "auto");
  assert.equal(tf.getBackend(), r.name);
  assert.ok(r.reason.startsWith(`${r.name} (auto): `), r.reason);
  // Tried in order up to the pick, which is the first that worked; every one before it says why it was skipped.
  assert.deepEqual(r.tried.map((t) => t.name), BACKEND_NAMES.slice(0, r.tried.length));
  assert.deepEqual(r.tried.at(-1), { name: r.name, ok: true, why: r.reason.slice(`${r.name} (auto): `.length) });
  for (const t of r.tried.slice(0, -1)) assert.ok(!t.ok && t.why.length > 0, JSON.stringify(t));
  const webgpu = r.tried.find((t) => t.name === "webgpu");
  const refusal = await webgpuRefusal();
  if (webgpu !== undefined && refusal !== undefined) assert.match(webgpu.why, refusal);
  const tfNode = await installed("@tensorflow/tfjs-node") || await installed("@tensorflow/tfjs-node-gpu");
  if (!tfNode) {
    const t = r.tried.find((x) => x.name === "tensorflow");
    assert.ok(t && !t.ok && /not installed/.test(t.why), JSON.stringify(r.tried));
    // No real GPU adapter on these machines: webgpu must be refused, wasm picked.
    if (r.name !== "webgpu") assert.equal(r.name, "wasm", JSON.stringify(r.tried));
  }
});

Deno.test("MECO_BACKEND overrides the argument", async () => {
  const r = await withEnv("cpu", () => initBackend("wasm"));
  assert.equal(r.name, "cpu");
  assert.equal(r.source, "env MECO_BACKEND");
  assert.equal(tf.getBackend(), "cpu");
  const r2 = await withEnv(undefined, () => initBackend("wasm"));
  assert.equal(r2.name, "wasm");
  assert.equal(r2.source, "argument");
});

Deno.test("an unknown backend is an error naming it and the choices", async () => {
  await assert.rejects(
    () => withEnv("tpu", () => initBackend()),
    (e: unknown) => e instanceof BackendError && /'tpu'/.test(e.message) && /wasm/.test(e.message),
  );
});

/** Why webgpu cannot be used on this machine, as initBackend words it; undefined where a real GPU adapter exists. */
async function webgpuRefusal(): Promise<RegExp | undefined> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (gpu === undefined) return /navigator\.gpu is absent/;
  const adapter = await gpu.requestAdapter();
  if (adapter === null) return /no WebGPU adapter/;
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  return info.isFallbackAdapter === true ? /only a software fallback adapter/ : undefined;
}

Deno.test("webgpu asked for by name: used on a real GPU adapter, refused with the reason otherwise", async () => {
  const refusal = await webgpuRefusal();
  try {
    if (refusal === undefined) {
      const r = await withEnv(undefined, () => initBackend("webgpu"));
      assert.equal(r.name, "webgpu");
      assert.equal(tf.getBackend(), "webgpu");
      assert.match(r.reason, /^webgpu \(argument\): adapter /);
    } else {
      await assert.rejects(
        () => withEnv(undefined, () => initBackend("webgpu")),
        (e: unknown) => e instanceof BackendError && e.backend === "webgpu" && refusal.test(e.message),
      );
      assert.notEqual(tf.getBackend(), "webgpu", "a refused backend is not left active");
    }
  } finally {
    await withEnv(undefined, () => initBackend("wasm"));
  }
  assert.equal(tf.getBackend(), "wasm");
});
