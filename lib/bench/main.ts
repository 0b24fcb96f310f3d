/**
 * `deno task bench`: prints one JSON object per line, `{"name", "ms", "backend",
 * "cpu", "onednn", "onednn_isa"}` (`ms` the median; oneDNN's version and the
 * instruction set its kernels use, null when they are not loaded), for every
 * workload on the selected backend.
 *
 * Usage: `deno task bench [--only NAME]`
 *
 * @module
 */
import { initBackend, nativeReport } from "../backend/mod.ts";
import { cpuName } from "../experiments/provenance.ts";
import { cliError, parseCli } from "../cli/args.ts";
import { DEFENSE_WORKLOADS } from "./defense_workloads.ts";
import { timeWorkload, WORKLOADS } from "./workloads.ts";

const CLI = {
  usage: "deno task bench [--only NAME]",
  description: "Times every workload on the selected backend; prints one JSON line per workload (the median ms).",
  options: { only: { type: "string", value: "NAME", help: "time this workload only" } },
} as const;

if (import.meta.main) {
  const { values } = parseCli(CLI);
  const workloads = [...WORKLOADS, ...DEFENSE_WORKLOADS];
  const only = values.only;
  if (only !== undefined && !workloads.some((w) => w.name === only)) {
    cliError(
      CLI,
      `--only: no workload named ${JSON.stringify(only)} (workloads: ${workloads.map((w) => w.name).join(", ")})`,
    );
  }
  const backend = await initBackend();
  console.error(`backend: ${backend.reason}`);
  const native = backend.name === "wasm" ? nativeReport() : undefined;
  const machine = {
    backend: backend.name,
    cpu: cpuName(),
    onednn: native?.ok ? native.version ?? null : null,
    onednn_isa: native?.ok ? native.isa ?? null : null,
  };
  for (const w of workloads) {
    if (only !== undefined && w.name !== only) continue;
    const ms = timeWorkload(w);
    console.log(JSON.stringify({ name: w.name, ms: Math.round(ms * 1000) / 1000, ...machine }));
  }
}
