/**
 * Sweeps on a real single-node Slurm cluster (slurmctld and slurmd started
 * by the tests, jobs through sbatch, squeue, scontrol and scancel): a smoke
 * sweep of configs/mnist_dfme.yaml over seeds 0 and 1 as one job array writes
 * the rows `deno task repro` writes for the same cells (computed apart, from
 * an empty cache); an array task killed
 * mid-cell is reported failed with its log and the command that resubmits it,
 * and the resubmitted task resumes from the cell's checkpoint. Skipped only
 * where Slurm is not installed (the optional part `slurm`).
 */
import assert from "node:assert/strict";
import { optionalPart } from "../../lib/system/optional_parts.ts";
import { missingSlurmBinary, startTestCluster, type TestCluster } from "../../lib/experiments/slurm_cluster.ts";
import { tinyConfig } from "./_tiny.ts";

const slurm = optionalPart("slurm");
const root = new URL("../../", import.meta.url).pathname;
const sweepCli = `${root}lib/cli/sweep.ts`;
const reproCli = `${root}lib/cli/repro.ts`;

let cluster: TestCluster | undefined;

Deno.test.beforeAll(async () => {
  if (!slurm.available) return;
  assert.equal(missingSlurmBinary(), undefined, "slurm is installed, so every Slurm binary must be there");
  cluster = await startTestCluster({ cpus: 2 });
});

Deno.test.afterAll(async () => {
  await cluster?.stop();
});

interface Row {
  defense: string;
  attack: string;
  seed: number;
  queries: number;
  minutes: number;
  clone_acc: number | null;
  provenance?: { command: string; date: string };
}

function run(script: string, args: string[], cache: string): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    env: { ...cluster!.env, MECO_CACHE_DIR: cache, NO_COLOR: "1" },
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  });
}

async function output(cmd: Deno.Command): Promise<{ ok: boolean; text: string }> {
  const out = await cmd.output();
  return { ok: out.success, text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
}

async function rowsOf(dir: string): Promise<Row[]> {
  return JSON.parse(await Deno.readTextFile(`${dir}/summary.json`)).rows;
}

// Wall minutes and the run's provenance (command, date, load) differ between runs; everything else must not.
const strip = (rows: Row[]) => rows.map(({ minutes: _m, provenance: _p, ...r }) => r);

Deno.test({
  name: "a smoke sweep of mnist_dfme over seeds 0,1 as a Slurm job array writes the rows repro writes",
  ignore: !slurm.available,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "meco-slurm-sweep-" });
    try {
      const common = ["configs/mnist_dfme.yaml", "--profile", "smoke"];
      const sweep = await output(
        run(
          sweepCli,
          [...common, "--seeds", "0,1", "--scheduler", "slurm", "--set", `output.dir=${tmp}/sweep`],
          `${tmp}/c1`,
        ),
      );
      assert.ok(sweep.ok, sweep.text);
      const job = /submitted Slurm job array (\d+) \(2 task\(s\)/.exec(sweep.text);
      assert.ok(job, sweep.text);
      for (const i of [0, 1]) {
        assert.match(
          sweep.text,
          new RegExp(`cell seed ${i} \\(slurm job ${job[1]}_${i}\\): done — COMPLETED, exit code 0`),
        );
      }
      const swept = await rowsOf(`${tmp}/sweep`);
      assert.equal(swept.length, 4, "2 defenses × 1 attack × 2 seeds");
      assert.deepEqual(swept.map((r) => r.queries), [4032, 4032, 4032, 4032]);

      // repro computes the same cells in one process, from an empty cache of its own.
      const repro = await output(
        run(reproCli, [...common, "--set", "seeds=[0, 1]", "--set", `output.dir=${tmp}/repro`], `${tmp}/c2`),
      );
      assert.ok(repro.ok, repro.text);
      assert.deepEqual(strip(swept), strip(await rowsOf(`${tmp}/repro`)));
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

// 224 queries per DFME iteration (32 · (1 + 1 + 5)); 100 iterations, a checkpoint every 4.
const killConfig = (out: string) =>
  tinyConfig({
    name: "sweep_kill",
    description: "kill-and-resubmit test",
    budget: 22400,
    evalEvery: 4480,
    checkpointEvery: 896,
    testSubset: 200,
    out,
  });

/** The checkpointed query count of the one attack cell under `cache`, or 0. */
async function checkpointed(cache: string): Promise<number> {
  try {
    for await (const e of Deno.readDir(`${cache}/attack`)) {
      if (!e.isDirectory) continue;
      return JSON.parse(await Deno.readTextFile(`${cache}/attack/${e.name}/checkpoint/latest/meta.json`)).queries;
    }
  } catch {
    // not written yet
  }
  return 0;
}

Deno.test({
  name: "an array task killed mid-cell is reported with its log, and resubmitted alone it resumes from its checkpoint",
  ignore: !slurm.available,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "meco-slurm-kill-" });
    try {
      const cache = `${tmp}/cache`;
      await Deno.writeTextFile(`${tmp}/kill.yaml`, killConfig(`${tmp}/out`));
      const child = run(sweepCli, [`${tmp}/kill.yaml`, "--profile", "local", "--scheduler", "slurm"], cache).spawn();
      const text = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
      let spent = 0;
      const t0 = Date.now();
      while ((spent = await checkpointed(cache)) === 0) {
        assert.ok(Date.now() - t0 < 90_000, "no checkpoint within 90 s");
        await new Promise((r) => setTimeout(r, 50));
      }
      const jobs = await output(new Deno.Command("squeue", { args: ["-h", "-r", "-o", "%i|%j"], env: cluster!.env }));
      const task = jobs.text.split("\n").find((l) => l.endsWith("|meco-sweep_kill-local"))?.split("|")[0];
      assert.ok(task, `the running array task in: ${jobs.text}`);
      const cancel = await output(new Deno.Command("scancel", { args: [task], env: cluster!.env }));
      assert.ok(cancel.ok, cancel.text);
      const status = await child.status;
      const [out, err] = await text;
      assert.equal(status.code, 1, out + err);
      assert.match(err, /cell seed 0 FAILED \(CANCELLED\); log: \S+cell-0\.log/);
      assert.match(err, /\| undefended\/dfme seed 0/, "the log's tail");
      assert.ok(spent > 0 && spent < 22400, `killed at ${spent} queries`);
      await assert.rejects(Deno.stat(`${tmp}/out/summary.json`), Deno.errors.NotFound, "no summary after a failure");
      const resumeAt = await checkpointed(cache);
      assert.ok(resumeAt >= spent && resumeAt < 22400, `checkpoint at ${resumeAt}: killed mid-cell`);

      // The printed resubmit command, run as printed (the task name resolved to the CLI).
      const resubmit = /resubmit it alone: deno task sweep (.*)$/m.exec(err);
      assert.ok(resubmit, err);
      const args = resubmit[1].split(" ");
      assert.deepEqual(args.slice(-2), ["--seeds", "0"]);
      const second = await output(run(sweepCli, args, cache));
      assert.ok(second.ok, second.text);
      assert.match(second.text, /1 cell\(s\), 0 cached, 1 to run \(seed 0\)/);
      const folder = /sweep folder: (\S+)/.exec(second.text)![1];
      const log = await Deno.readTextFile(`${folder}/logs/cell-0.log`);
      assert.match(log, /victim seed 0: cached/);
      assert.match(log, new RegExp(`resuming from the checkpoint at ${resumeAt} queries`));
      assert.doesNotMatch(log, /epoch 1\/1/, "the victim was trained again");
      const counts = [...log.matchAll(/ (\d+)\/22400 queries/g)].map((m) => Number(m[1]));
      assert.ok(counts.length > 0 && counts.every((q) => q > resumeAt), `progress ${counts} after ${resumeAt}`);
      const rows = await rowsOf(`${tmp}/out`);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].queries, 22400);
      // No lock is left behind in the cache.
      const locks: string[] = [];
      for await (const kind of Deno.readDir(cache)) {
        if (!kind.isDirectory) continue;
        for await (const e of Deno.readDir(`${cache}/${kind.name}`)) if (e.name.endsWith(".lock")) locks.push(e.name);
      }
      assert.deepEqual(locks, []);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
