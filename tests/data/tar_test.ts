import { readTar } from "../../lib/data/tar.ts";
import { assert, assertDataError, fakeBytes, tarBytes } from "./_helpers.ts";

Deno.test("readTar lists files and directories with their data", () => {
  const a = fakeBytes(1000, 1);
  const b = fakeBytes(512, 2);
  const longName = "dir/" + "x".repeat(120) + ".bin";
  const tar = tarBytes([
    { name: "dir/" },
    { name: "./dir/a.bin", data: a },
    { name: "dir/b.bin", data: b },
    { name: "dir/empty", data: new Uint8Array(0) },
    { name: longName, data: new Uint8Array([7, 8, 9]) },
  ]);
  const entries = readTar(tar, "t.tar");
  assert.deepEqual(
    entries.map((e) => [e.name, e.kind, e.size]),
    [
      ["dir/", "directory", 0],
      ["dir/a.bin", "file", 1000],
      ["dir/b.bin", "file", 512],
      ["dir/empty", "file", 0],
      [longName, "file", 3],
    ],
  );
  assert.deepEqual(entries[1].data, a);
  assert.deepEqual(entries[2].data, b);
  assert.deepEqual(Array.from(entries[4].data), [7, 8, 9]);
});

Deno.test("readTar faults: header checksum, truncated member, truncated header", async () => {
  const tar = tarBytes([{ name: "a.bin", data: fakeBytes(700, 3) }]);
  const bad = tar.slice();
  bad[10] ^= 0x01; // a name byte, so the stored checksum no longer matches
  await assertDataError(
    () => readTar(bad, "bad.tar"),
    "bad_archive",
    "bad.tar",
  );
  await assertDataError(
    () => readTar(tar.subarray(0, 512 + 600), "cut.tar"),
    "truncated",
    "cut.tar",
  );
  await assertDataError(
    () => readTar(tar.subarray(0, 300), "cut2.tar"),
    "truncated",
    "cut2.tar",
  );
});
