/**
 * Killing `deno task repro` mid-attack and rerunning it: the rerun resumes
 * the attack from its last checkpoint (the victim comes from the cache), and
 * ends with the same rows as an uninterrupted run.
 */
import assert from "node:assert/strict";
import { cp } from "node:fs/promises";
import { tinyConfig } from "./_tiny.ts";

const root = new URL("../../", import.meta.url).pathname;
const repro = `${root}lib/cli/repro.ts`;

// 224 queries per DFME iteration (32 · (1 + 1 + 5)); 40 iterations, a checkpoint every 4.
const yaml = (out: string) =>
  tinyConfig({
    name: "resume_e2e",
    description: "kill-and-resume test",
    budget: 8960,
    evalEvery: 1792,
    checkpointEvery: 896,
    testSubset: 300,
    out,
  });

interface Row {
  defense: string;
  attack: string;
  seed: number;
  target_acc: number;
  l1: number;
  clone_acc: number;
  queries: number;
  minutes: number;
  provenance?: { command: string; date: string };
}

function reproCommand(config: string, cache: string): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", repro, config, "--profile", "local"],
    env: { MECO_CACHE_DIR: cache },
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  });
}

async function runToEnd(config: string, cache: string): Promise<string> {
  const out = await reproCommand(config, cache).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `repro failed:\n${text.slice(-3000)}`);
  return text;
}

/** The checkpointed query count of the single attack cell under `cache`, or 0. */
async function checkpointed(cache: string): Promise<number> {
  try {
    for await (const e of Deno.readDir(`${cache}/attack`)) {
      if (!e.isDirectory) continue; // the cell's lock file sits beside it
      const meta = JSON.parse(await Deno.readTextFile(`${cache}/attack/${e.name}/checkpoint/latest/meta.json`));
      return meta.queries;
    }
  } catch {
    // not written yet
  }
  return 0;
}

async function readRows(dir: string): Promise<{ rows: Row[]; curves: unknown }> {
  const s = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
  const c = JSON.parse(await Deno.readTextFile(`${dir}/curves.json`));
  return { rows: s.rows, curves: c.curves };
}

// Wall minutes and the run's provenance (command, date, load) differ between runs; everything else must not.
const strip = (rows: Row[]) => rows.map(({ minutes: _m, provenance: _p, ...r }) => r);

Deno.test("a repro run killed mid-attack resumes from its checkpoint and ends with the same rows", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "meco-resume-" });
  try {
    // Reference: one uninterrupted run.
    await Deno.writeTextFile(`${tmp}/ref.yaml`, yaml(`${tmp}/ref-out`));
    await runToEnd(`${tmp}/ref.yaml`, `${tmp}/ref-cache`);
    const ref = await readRows(`${tmp}/ref-out`);
    assert.equal(ref.rows.length, 1);
    assert.equal(ref.rows[0].queries, 8960);

    // Same victim cell (so both attacks face the same model), fresh attack.
    await cp(`${tmp}/ref-cache/victim`, `${tmp}/cache/victim`, { recursive: true });
    await Deno.writeTextFile(`${tmp}/run.yaml`, yaml(`${tmp}/out`));
    const child = reproCommand(`${tmp}/run.yaml`, `${tmp}/cache`).spawn();
    const drained = Promise.all([child.stdout.pipeTo(new WritableStream()), child.stderr.pipeTo(new WritableStream())]);
    let spent = 0;
    const t0 = Date.now();
    while ((spent = await checkpointed(`${tmp}/cache`)) === 0) {
      assert.ok(Date.now() - t0 < 60_000, "no checkpoint within a minute");
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGKILL");
    const status = await child.status;
    await drained;
    assert.equal(status.signal, "SIGKILL");
    assert.ok(spent > 0 && spent < 8960, `killed at ${spent} queries`);
    // Killed before the row existed: nothing final was written.
    await assert.rejects(Deno.stat(`${tmp}/out/summary.json`));

    // The checkpoint may have advanced between the poll and the kill: read what the rerun will see.
    const resumeAt = await checkpointed(`${tmp}/cache`);
    assert.ok(resumeAt >= spent && resumeAt < 8960);
    const log = await runToEnd(`${tmp}/run.yaml`, `${tmp}/cache`);
    assert.match(log, /victim seed 0: cached/);
    assert.match(log, new RegExp(`resuming from the checkpoint at ${resumeAt} queries`));
    assert.doesNotMatch(log, /epoch 1\/1/, "the victim was trained again");
    // The rerun's progress starts past the checkpoint: the queries before it were not spent again.
    const counts = [...log.matchAll(/ (\d+)\/8960 queries/g)].map((m) => Number(m[1]));
    assert.ok(counts.length > 0, log);
    assert.ok(counts.every((q) => q > resumeAt), `progress ${counts} after resuming at ${resumeAt}`);

    const got = await readRows(`${tmp}/out`);
    assert.deepEqual(strip(got.rows), strip(ref.rows));
    assert.deepEqual(got.curves, ref.curves);
    assert.ok(got.rows[0].minutes > 0);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
