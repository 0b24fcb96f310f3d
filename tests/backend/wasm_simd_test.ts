import assert from "node:assert/strict";
import { assembleWasmSimd, WASM_SIMD_SOURCES } from "../../lib/backend/native/build_wasm_simd.ts";
import { OPTIMIZER_SIMD_WASM } from "../../lib/backend/native/optimizer_simd_wasm.ts";
import { MAX_POOL_SIMD_WASM } from "../../lib/backend/native/max_pool_simd_wasm.ts";

const EMBEDDED: Record<typeof WASM_SIMD_SOURCES[number], string> = {
  optimizer_simd: OPTIMIZER_SIMD_WASM,
  max_pool_simd: MAX_POOL_SIMD_WASM,
};

Deno.test("every embedded WebAssembly SIMD module is its .wat assembled", async () => {
  for (const name of WASM_SIMD_SOURCES) {
    const bytes = await assembleWasmSimd(name);
    assert.equal(EMBEDDED[name], btoa(String.fromCharCode(...bytes)), `${name}: rerun build_wasm_simd.ts`);
  }
});
