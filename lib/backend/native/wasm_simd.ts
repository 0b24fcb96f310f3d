/**
 * This folder's WebAssembly SIMD modules (optimizer_simd.wat, max_pool_simd.wat)
 * bound to the tfjs wasm backend's own linear memory, so they read and write
 * tensors in place. A threaded tfjs build has shared memory, which a module
 * that imports a plain memory cannot take: there {@linkcode bindWasmSimd}
 * answers null and the callers run their TypeScript loops.
 *
 * @module
 */
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

const modules = new Map<string, WebAssembly.Module>();
const instances = new Map<string, WeakMap<object, object | null>>();

/**
 * The exports of the module `name` (bytes: its `*_WASM` constant) instantiated over `backend`'s memory, one instance
 * per module and backend; null where the memory is shared or absent.
 */
export function bindWasmSimd<T extends object>(name: string, base64: string, backend: BackendWasm): T | null {
  const wasm = backend.wasm as unknown as { asm?: { memory?: WebAssembly.Memory } };
  let bound = instances.get(name);
  if (bound === undefined) instances.set(name, bound = new WeakMap());
  let k = bound.get(wasm);
  if (k === undefined) {
    k = null;
    const memory = wasm.asm?.memory;
    if (memory instanceof WebAssembly.Memory && !(memory.buffer instanceof SharedArrayBuffer)) {
      try {
        let mod = modules.get(name);
        if (mod === undefined) modules.set(name, mod = new WebAssembly.Module(wasmBytes(base64)));
        k = new WebAssembly.Instance(mod, { env: { memory } }).exports;
      } catch {
        k = null;
      }
    }
    bound.set(wasm, k);
  }
  return k as T | null;
}

/** Decodes a `*_WASM` constant (a module's bytes, base64). */
export function wasmBytes(base64: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}
