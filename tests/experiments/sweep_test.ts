/**
 * Sweeps on local workers: the worker pool (at most N at a time, each
 * process's output in its log, a failure reported with its exit code), the
 * sweep's config (seeds beyond the profile's extend it), the Slurm job
 * script, and a small sweep end to end (its second run finds every cell
 * cached and recomputes nothing).
 */
import assert from "node:assert/strict";
import { loadConfig, parseConfig } from "../../lib/config/mod.ts";
import { REPO_ROOT } from "../../lib/experiments/paths.ts";
import { tinyConfig } from "./_tiny.ts";
import {
  type CellEvent,
  jobScript,
  loadSweepConfig,
  type LocalJob,
  runLocal,
  runSweep,
  slurmOptions,
  WORKER_SCRIPT,
} from "../../lib/experiments/sweep.ts";

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "meco-sweep-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("local workers: at most N cells at a time, each cell's output in its log, a failure with its exit code", async () => {
  await withTmp(async (dir) => {
    // Each job records its start and end (ms) in the trace; job 2 fails with exit code 3.
    const job = (i: number): LocalJob => ({
      cell: { index: i, seed: 10 + i },
      argv: [
        "bash",
        "-c",
        `echo "s $(date +%s%3N)" >> ${dir}/trace-${i}; echo "cell ${i} says hi"; sleep 0.3; ` +
        `echo "e $(date +%s%3N)" >> ${dir}/trace-${i}; ${i === 2 ? "echo 'it broke' >&2; exit 3" : "exit 0"}`,
      ],
      log: `${dir}/logs/cell-${i}.log`,
    });
    const events: CellEvent[] = [];
    const out = await runLocal([0, 1, 2, 3, 4].map(job), 2, (e) => events.push(e));
    assert.deepEqual(out.map((o) => o.ok), [true, true, false, true, true]);
    assert.equal(out[2].exitCode, 3);
    assert.equal(out[2].state, "exit 3");
    assert.match(await Deno.readTextFile(out[2].log), /cell 2 says hi\nit broke\n/);
    for (const i of [0, 1, 3, 4]) assert.equal(await Deno.readTextFile(out[i].log), `cell ${i} says hi\n`);
    // Concurrency: at no instant more than two jobs between start and end, and two did overlap.
    const spans = await Promise.all([0, 1, 2, 3, 4].map(async (i) => {
      const t = (await Deno.readTextFile(`${dir}/trace-${i}`)).trim().split("\n").map((l) => Number(l.split(" ")[1]));
      return t as [number, number];
    }));
    const concurrent = (t: number) => spans.filter(([s, e]) => s <= t && t < e).length;
    const most = Math.max(...spans.map(([s]) => concurrent(s)));
    assert.equal(most, 2, `spans ${JSON.stringify(spans)}`);
    // Every cell was seen running, then done or failed.
    for (const i of [0, 1, 2, 3, 4]) {
      const states = events.filter((e) => e.cell.index === i).map((e) => e.state);
      assert.deepEqual(states, ["running", i === 2 ? "failed" : "done"]);
    }
  });
});

Deno.test("a sweep's seeds beyond the profile's extend the config's seeds, as --set 'seeds=[...]' would", async () => {
  const path = `${REPO_ROOT}configs/mnist_dfme.yaml`;
  const a = await loadSweepConfig(path, "smoke", [], [0, 1]);
  const b = await loadSweepConfig(path, "smoke", [], [1]);
  const repro = await loadConfig(path, "smoke", { overrides: ["seeds=[0, 1]"] });
  assert.deepEqual(a.loaded.config.seeds, [0, 1]);
  assert.deepEqual(a.seeds, [0, 1]);
  assert.deepEqual(b.seeds, [1]);
  assert.equal(a.loaded.hash, repro.hash);
  assert.equal(b.loaded.hash, repro.hash, "resubmitting one seed gives the same config");
  const plain = await loadSweepConfig(path, "smoke", [], undefined);
  assert.equal(plain.loaded.hash, (await loadConfig(path, "smoke")).hash);
  assert.deepEqual(plain.overrides, []);
});

Deno.test("the Slurm job script carries the sbatch options, the setup lines and the array task's worker", () => {
  const s = jobScript("/shared/sweeps/x", "mnist_dfme-paper", {
    partition: "gpu",
    gres: "gpu:1",
    time: "04:00:00",
    cpusPerTask: 8,
    mem: "16G",
    extra: ["--account=proj"],
    setup: ["module load deno"],
  });
  const lines = s.split("\n");
  assert.equal(lines[0], "#!/bin/bash");
  for (
    const o of [
      "--job-name=meco-mnist_dfme-paper",
      "--output=/shared/sweeps/x/logs/cell-%a.log",
      "--open-mode=append",
      "--partition=gpu",
      "--gres=gpu:1",
      "--time=04:00:00",
      "--cpus-per-task=8",
      "--mem=16G",
      "--account=proj",
    ]
  ) assert.ok(lines.includes(`#SBATCH ${o}`), `#SBATCH ${o} in:\n${s}`);
  // sbatch reads #SBATCH lines only before the first command.
  const firstCommand = lines.findIndex((l, i) => i > 0 && !l.startsWith("#"));
  assert.ok(lines.slice(firstCommand).every((l) => !l.startsWith("#SBATCH")));
  assert.ok(lines.indexOf("module load deno") < lines.findIndex((l) => l.startsWith("exec ")));
  assert.ok(lines.includes(`cd ${REPO_ROOT}`));
  assert.match(s, /^export MECO_CACHE_DIR=\//m);
  assert.ok(
    lines.at(-2)!.endsWith(`run -A ${WORKER_SCRIPT} /shared/sweeps/x/manifest.json --index "$SLURM_ARRAY_TASK_ID"`),
  );
  assert.ok(!/--partition|--gres/.test(jobScript("/d", "n")));
});

// A victim trained for one epoch on 600 images and a 896-query DFME: seconds per cell.
const sweepConfig = (out: string) =>
  tinyConfig({
    name: "sweep_local",
    description: "local sweep test",
    seeds: [0, 1],
    budget: 896,
    evalEvery: 448,
    checkpointEvery: 448,
    testSubset: 200,
    out,
  });

Deno.test("a local sweep runs the uncached cells on two workers; run again, it finds them cached and recomputes none", async () => {
  await withTmp(async (dir) => {
    const prev = Deno.env.get("MECO_CACHE_DIR");
    Deno.env.set("MECO_CACHE_DIR", `${dir}/cache`);
    try {
      await Deno.writeTextFile(`${dir}/c.yaml`, sweepConfig(`${dir}/out`));
      const lines: string[] = [];
      const opts = {
        config: `${dir}/c.yaml`,
        profile: "local" as const,
        scheduler: "local" as const,
        workers: 2,
        log: (m: string) => lines.push(m),
      };
      const first = await runSweep(opts);
      assert.deepEqual(first.failed, [], lines.join("\n"));
      assert.deepEqual(first.planned, [{ seed: 0, cached: false }, { seed: 1, cached: false }]);
      assert.deepEqual(first.outcomes.map((o) => [o.cell.seed, o.ok]), [[0, true], [1, true]]);
      const cellLog = await Deno.readTextFile(first.outcomes[1].log);
      assert.match(cellLog, /== cell 1 \(seed 1\)/);
      assert.match(cellLog, /undefended\/dfme seed 1: clone accuracy/);
      const summary = JSON.parse(await Deno.readTextFile(`${dir}/out/summary.json`));
      assert.deepEqual(summary.rows.map((r: { seed: number }) => r.seed), [0, 1]);
      assert.deepEqual(summary.rows.map((r: { queries: number }) => r.queries), [896, 896]);

      lines.length = 0;
      const second = await runSweep(opts);
      assert.deepEqual(second.planned, [{ seed: 0, cached: true }, { seed: 1, cached: true }]);
      assert.deepEqual(second.outcomes, []);
      assert.equal(second.dir, undefined, "nothing was dispatched");
      assert.deepEqual(second.summary!.rows, summary.rows, "the cached rows, minutes included");
      assert.doesNotMatch(lines.join("\n"), /epoch|queries \(/, lines.join("\n"));
    } finally {
      if (prev === undefined) Deno.env.delete("MECO_CACHE_DIR");
      else Deno.env.set("MECO_CACHE_DIR", prev);
    }
  });
});

Deno.test("sweep: sbatch options come from the config's scheduler section, each flag given taking its place", async () => {
  assert.deepEqual(slurmOptions(undefined, {}), {});
  const section = {
    partition: "cpu",
    time: "01:00:00",
    cpus_per_task: 4,
    sbatch: ["--account=a"],
    setup: ["module load x"],
  };
  assert.deepEqual(slurmOptions(section, { partition: "gpu", gres: "gpu:1", extra: ["--qos=high"] }), {
    partition: "gpu",
    gres: "gpu:1",
    time: "01:00:00",
    cpusPerTask: 4,
    extra: ["--account=a", "--qos=high"],
    setup: ["module load x"],
  });
  // The section is validated, and where cells run is not part of what determines them: the hash is unchanged.
  const text = await Deno.readTextFile(new URL("../../configs/mnist_dfme.yaml", import.meta.url));
  const plain = await parseConfig(text, "plain", "smoke");
  const withScheduler = await parseConfig(`${text}\nscheduler: { partition: gpu, gres: "gpu:1" }\n`, "s", "smoke");
  assert.equal(withScheduler.hash, plain.hash);
  assert.deepEqual(withScheduler.config.scheduler, { partition: "gpu", gres: "gpu:1" });
  await assert.rejects(
    () => parseConfig(`${text}\nscheduler: { partitoin: gpu }\n`, "bad", "smoke"),
    /partitoin/,
  );
});
