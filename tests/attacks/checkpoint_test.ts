import assert from "node:assert/strict";
import {
  checkpointQueries,
  commitCheckpoint,
  latestCheckpoint,
  readCheckpointMeta,
  ResumeError,
} from "../../lib/attacks/checkpoint.ts";
import { cloneFactory, UnknownCloneArchError } from "../../lib/attacks/clone.ts";
import { initBackend } from "../../lib/backend/mod.ts";

await initBackend("wasm");

const names = async (dir: string) => (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();

Deno.test("commitCheckpoint replaces the checkpoint as a whole", async () => {
  const dir = await Deno.makeTempDir();
  assert.equal(await readCheckpointMeta(dir), undefined);
  assert.equal(await checkpointQueries(dir), 0);
  assert.equal(await checkpointQueries(undefined), 0);
  await commitCheckpoint(dir, { format: "t/1", queries: 10 }, async (stage) => {
    await Deno.writeTextFile(`${stage}/part`, "one");
  });
  await commitCheckpoint(dir, { format: "t/1", queries: 20 }, async (stage) => {
    await Deno.writeTextFile(`${stage}/part`, "two");
  });
  assert.equal(await checkpointQueries(dir), 20);
  assert.equal(await Deno.readTextFile(`${latestCheckpoint(dir)}/part`), "two");
  assert.deepEqual(await names(dir), ["latest"]);
  // A failed write leaves the previous checkpoint and no debris.
  await assert.rejects(() =>
    commitCheckpoint(dir, { format: "t/1", queries: 30 }, async (stage) => {
      await Deno.writeTextFile(`${stage}/part`, "three");
      throw new Error("disk full");
    })
  );
  assert.equal(await checkpointQueries(dir), 20);
  assert.deepEqual(await names(dir), ["latest"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("readCheckpointMeta recovers from a crash mid-replacement and removes abandoned stages", async () => {
  const dir = await Deno.makeTempDir();
  await commitCheckpoint(dir, { format: "t/1", queries: 5 }, async () => {});
  // Crash after `latest` was moved aside, before the stage was renamed in.
  await Deno.rename(latestCheckpoint(dir), `${latestCheckpoint(dir)}.old`);
  await Deno.mkdir(`${latestCheckpoint(dir)}.tmp-abandoned`);
  assert.equal(await checkpointQueries(dir), 5);
  assert.deepEqual(await names(dir), ["latest"]);
  await Deno.writeTextFile(`${latestCheckpoint(dir)}/meta.json`, "{not json");
  await assert.rejects(() => readCheckpointMeta(dir), ResumeError);
  await Deno.writeTextFile(`${latestCheckpoint(dir)}/meta.json`, JSON.stringify({ format: "t/1", queries: -1 }));
  await assert.rejects(() => readCheckpointMeta(dir), /non-negative integer queries/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cloneFactory builds the named architecture at the black box's shape", () => {
  const lenet = cloneFactory("lenet5", [28, 28, 1], 10)(0);
  assert.deepEqual(lenet.outputs[0].shape, [null, 10]);
  assert.deepEqual(lenet.inputs[0].shape, [null, 28, 28, 1]);
  lenet.dispose();
  const resnet = cloneFactory("resnet18_8x", [32, 32, 3], 100)(0);
  assert.deepEqual(resnet.outputs[0].shape, [null, 100]);
  resnet.dispose();
  assert.throws(() => cloneFactory("densenet121", [32, 32, 3], 10), UnknownCloneArchError);
});
