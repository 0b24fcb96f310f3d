/**
 * Cell locks: exclusive across processes, waited for while held, taken over
 * when their holder is gone or their heartbeat is old, refreshed while held,
 * and never removed by a holder that lost them.
 */
import assert from "node:assert/strict";
import { acquireLock, type LockInfo, LockTimeoutError, withLock } from "../../lib/experiments/lock.ts";

const lockModule = new URL("../../lib/experiments/lock.ts", import.meta.url).href;

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "meco-lock-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("processes contending for a cell lock hold it one at a time", async () => {
  await withTmp(async (dir) => {
    // Each process appends "in" and "out" around a read-modify-write of a counter under the lock.
    const script = `
      import { withLock } from "${lockModule}";
      const [dir] = Deno.args;
      for (let i = 0; i < 3; i++) {
        await withLock(dir + "/cell.lock", async () => {
          await Deno.writeTextFile(dir + "/trace", "in\\n", { append: true });
          const n = Number(await Deno.readTextFile(dir + "/counter").catch(() => "0"));
          await new Promise((r) => setTimeout(r, 30));
          await Deno.writeTextFile(dir + "/counter", String(n + 1));
          await Deno.writeTextFile(dir + "/trace", "out\\n", { append: true });
        }, { pollMs: 10 });
      }`;
    const procs = [0, 1, 2].map(() =>
      new Deno.Command(Deno.execPath(), { args: ["eval", script, dir], stdout: "null", stderr: "piped" }).output()
    );
    const outs = await Promise.all(procs);
    for (const o of outs) assert.ok(o.success, new TextDecoder().decode(o.stderr));
    assert.equal(await Deno.readTextFile(`${dir}/counter`), "9");
    const trace = (await Deno.readTextFile(`${dir}/trace`)).trim().split("\n");
    assert.equal(trace.length, 18);
    trace.forEach((t, i) => assert.equal(t, i % 2 === 0 ? "in" : "out", `overlap at line ${i}: ${trace.join(",")}`));
    await assert.rejects(Deno.stat(`${dir}/cell.lock`), Deno.errors.NotFound);
  });
});

Deno.test("a waiter gets the lock when the holder releases it, and is told who held it", async () => {
  await withTmp(async (dir) => {
    const held = await acquireLock(`${dir}/c.lock`);
    const said: string[] = [];
    let got = false;
    const waiting = withLock(`${dir}/c.lock`, () => Promise.resolve(got = true), {
      pollMs: 10,
      log: (m) => said.push(m),
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(got, false, "the waiter ran while the lock was held");
    await held.release();
    await waiting;
    assert.equal(got, true);
    assert.equal(said.length, 1);
    assert.match(said[0], new RegExp(`held by pid ${Deno.pid} on `));
  });
});

Deno.test("a lock whose holder process is gone is taken over at once", async () => {
  await withTmp(async (dir) => {
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    const info: LockInfo = { host: Deno.hostname(), pid: gone.pid, token: "old", since: new Date().toISOString() };
    await Deno.writeTextFile(`${dir}/c.lock`, JSON.stringify(info));
    const said: string[] = [];
    const t0 = Date.now();
    const lock = await acquireLock(`${dir}/c.lock`, { timeoutMs: 5000, log: (m) => said.push(m) });
    assert.ok(Date.now() - t0 < 2000);
    assert.match(said.join("\n"), new RegExp(`taking over the stale lock .*pid ${gone.pid} .* is gone`));
    const now = JSON.parse(await Deno.readTextFile(`${dir}/c.lock`)) as LockInfo;
    assert.equal(now.token, lock.info.token);
    await lock.release();
  });
});

Deno.test("another host's lock is waited for while its heartbeat is fresh and taken over once it is old", async () => {
  await withTmp(async (dir) => {
    const path = `${dir}/c.lock`;
    const info: LockInfo = { host: "other-node", pid: 1, token: "theirs", since: new Date().toISOString() };
    await Deno.writeTextFile(path, JSON.stringify(info));
    const err = await acquireLock(path, { staleMs: 60_000, pollMs: 10, timeoutMs: 200 }).catch((e) => e);
    assert.ok(err instanceof LockTimeoutError, String(err));
    assert.match(err.message, /held by pid 1 on other-node/);
    const old = new Date(Date.now() - 120_000);
    await Deno.utime(path, old, old);
    const lock = await acquireLock(path, { staleMs: 60_000, pollMs: 10, timeoutMs: 2000 });
    assert.notEqual(lock.info.token, "theirs");
    await lock.release();
  });
});

Deno.test("the holder's heartbeat keeps its lock fresh", async () => {
  await withTmp(async (dir) => {
    const path = `${dir}/c.lock`;
    const lock = await acquireLock(path, { heartbeatMs: 20 });
    const old = new Date(Date.now() - 3_600_000);
    await Deno.utime(path, old, old);
    await new Promise((r) => setTimeout(r, 150));
    const age = Date.now() - (await Deno.stat(path)).mtime!.getTime();
    assert.ok(age < 10_000, `heartbeat ${age} ms old`);
    await lock.release();
  });
});

Deno.test("releasing a lock that another worker took over leaves theirs in place", async () => {
  await withTmp(async (dir) => {
    const path = `${dir}/c.lock`;
    const lock = await acquireLock(path);
    const theirs: LockInfo = { host: "other-node", pid: 7, token: "theirs", since: new Date().toISOString() };
    await Deno.writeTextFile(path, JSON.stringify(theirs));
    await lock.release();
    assert.equal((JSON.parse(await Deno.readTextFile(path)) as LockInfo).token, "theirs");
  });
});
