import assert from "node:assert/strict";
import { serverBackend } from "../../lib/serve/load_cli.ts";

Deno.test("the load test's rows record the servers' backend and oneDNN from the line each server logs", () => {
  assert.deepEqual(
    serverBackend(
      "wasm (auto): XNNPACK + SIMD, with this project's training kernels, oneDNN 2.6.3 (avx512_core_amx, 2 threads, " +
        "GOMP_SPINCOUNT=10000, convolutions split with a helper thread) native convs/matmul",
    ),
    ["wasm", { ok: true, version: "2.6.3", isa: "avx512_core_amx" }],
  );
  assert.deepEqual(serverBackend("wasm (auto): XNNPACK + SIMD; oneDNN not loaded: MECO_NATIVE=0"), ["wasm", {
    ok: false,
  }]);
  assert.deepEqual(serverBackend("cpu (MECO_BACKEND=cpu)"), ["cpu", { ok: false }]);
  assert.deepEqual(serverBackend(""), ["unknown", { ok: false }]);
});
