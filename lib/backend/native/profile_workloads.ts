import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../mod.ts";
import { WORKLOADS } from "../../bench/workloads.ts";
import { profileKernels, type KernelTimes } from "../../bench/kernel_profile.ts";
const rep = await initBackend();
console.log(rep.reason);
const only = Deno.args[0] ?? "";
for (const w of WORKLOADS) {
  if (only && !w.name.startsWith(only)) continue;
  const { run, dispose } = w.setup();
  for (let i = 0; i < 3; i++) run();
  const times: KernelTimes = new Map();
  const stop = profileKernels(tf.getBackend(), times);
  const R = 5;
  const t0 = performance.now();
  for (let i = 0; i < R; i++) run();
  const total = (performance.now() - t0) / R;
  stop();
  dispose();
  let sum = 0;
  const rows = [...times.entries()].sort((a, b) => b[1].ms - a[1].ms);
  for (const [, v] of rows) sum += v.ms / R;
  console.log(`== ${w.name}: ${total.toFixed(1)} ms/step, kernels ${sum.toFixed(1)} ms, calls ${rows.reduce((s, r) => s + r[1].calls, 0) / R}`);
  for (const [k, v] of rows.slice(0, 14)) console.log(`  ${k.padEnd(24)} ${(v.ms / R).toFixed(2).padStart(8)} ms  ${v.calls / R} calls`);
}
