import assert from "node:assert/strict";
import { lastTiming, type SideBySide, sideBySideTable } from "../../lib/bench/side_by_side.ts";

Deno.test("side by side: the last timing line of a command's output; none is an error naming the command", () => {
  const out = 'backend: wasm\n{"name":"a","ms":12.5}\nlog line\n{"name":"b","ms":3}\n';
  assert.equal(lastTiming(out, "bench").ms, 3);
  assert.throws(
    () => lastTiming('warning: slow\n{"name":"x"}\n', "peer lenet"),
    /peer lenet printed no timing line.*slow/,
  );
});

Deno.test("side by side: one row per workload, each round's ms and the ratio ours / PyTorch", () => {
  const row = (round: number, name: string, ours: number, peer: number): SideBySide => ({
    round,
    isa: "default",
    name,
    ours: { ms: ours, cpu: "cpu", onednn_isa: "avx2" },
    peer: { ms: peer, blas_gflops: 150 },
  });
  const t = sideBySideTable([row(1, "a", 20, 40), row(1, "b", 300, 150), row(2, "a", 22, 44), row(2, "b", 310, 155)]);
  const lines = t.split("\n");
  assert.equal(lines.length, 4);
  assert.equal(lines[2], "| a | 20.0 / 22.0 | 40.0 / 44.0 | 0.50 / 0.50 |");
  assert.equal(lines[3], "| b | 300 / 310 | 150 / 155 | 2.00 / 2.00 |");
});
