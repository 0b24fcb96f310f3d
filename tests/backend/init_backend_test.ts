import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { BackendError, initBackend } from "../../lib/backend/mod.ts";

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

Deno.test("webgpu asked for by name refuses a software fallback adapter", async () => {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  const adapter = gpu ? await gpu.requestAdapter() : null;
  const fallback = adapter === null ||
    (adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  if (!fallback) return; // a real GPU: nothing to refuse
  await assert.rejects(
    () => withEnv(undefined, () => initBackend("webgpu")),
    (e: unknown) => e instanceof BackendError && /webgpu/.test(e.message),
  );
  await withEnv(undefined, () => initBackend("wasm"));
});
