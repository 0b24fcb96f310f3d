/**
 * `deno task bench`: prints one JSON object per line, `{"name", "ms"}` (the
 * median), for every workload on the selected backend.
 *
 * Usage: `deno task bench [--only NAME]`
 *
 * @module
 */
import { initBackend } from "../backend/mod.ts";
import { DEFENSE_WORKLOADS } from "./defense_workloads.ts";
import { timeWorkload, WORKLOADS } from "./workloads.ts";

if (import.meta.main) {
  const i = Deno.args.indexOf("--only");
  const only = i >= 0 ? Deno.args[i + 1] : "";
  const backend = await initBackend();
  console.error(`backend: ${backend.reason}`);
  for (const w of [...WORKLOADS, ...DEFENSE_WORKLOADS]) {
    if (only && w.name !== only) continue;
    const ms = timeWorkload(w);
    console.log(JSON.stringify({ name: w.name, ms: Math.round(ms * 1000) / 1000, backend: backend.name }));
  }
}
