import { join } from "node:path";
import { CIFAR_SOURCES, extractCifarArchive } from "../../lib/data/cifar_source.ts";
import { md5Hex } from "../../lib/data/md5.ts";
import { loadDataset } from "../../lib/data/registry.ts";
import {
  assert,
  assertDataError,
  cifarBytes,
  cifarRecords,
  gzip,
  listTree,
  serveFixtures,
  tarBytes,
  type TarMember,
} from "./_helpers.ts";

// Small fixture archives shaped like the real ones: 3 records per train batch, 2 test records.
const C10_TRAIN = [1, 2, 3, 4, 5].map((b) => cifarRecords(3, b, (i) => (b + i) % 10));
const C10_TEST = cifarRecords(2, 6, (i) => 7 + i);
const C100_TRAIN = cifarRecords(4, 7, (i) => 90 + i, (i) => 10 + i);
const C100_TEST = cifarRecords(2, 8, (i) => 40 + i, (i) => 3 + i);

function cifar10Members(): TarMember[] {
  return [
    { name: "cifar-10-batches-bin/" },
    {
      name: "cifar-10-batches-bin/batches.meta.txt",
      data: new TextEncoder().encode("airplane\n"),
    },
    ...C10_TRAIN.map((recs, i) => ({
      name: `cifar-10-batches-bin/data_batch_${i + 1}.bin`,
      data: cifarBytes(recs),
    })),
    { name: "cifar-10-batches-bin/test_batch.bin", data: cifarBytes(C10_TEST) },
  ];
}
const C10_TGZ = gzip(tarBytes(cifar10Members()));
const C100_TGZ = gzip(tarBytes([
  { name: "cifar-100-binary/" },
  { name: "cifar-100-binary/train.bin", data: cifarBytes(C100_TRAIN, true) },
  { name: "cifar-100-binary/test.bin", data: cifarBytes(C100_TEST, true) },
]));
// an archive lacking test_batch.bin
const C10_INCOMPLETE = gzip(tarBytes(cifar10Members().slice(0, -1)));

const noNetwork: typeof fetch = () => Promise.reject(new Error("network must not be used"));

Deno.test("CIFAR-10: downloads from an injected URL, verifies, extracts, then serves from cache", async () => {
  const dataDir = await Deno.makeTempDir();
  const srv = serveFixtures({ "/c10.tgz": C10_TGZ });
  try {
    const opts = {
      dataDir,
      url: srv.url("/c10.tgz"),
      md5: md5Hex(C10_TGZ),
      verify: false,
    };
    const train = await loadDataset("cifar10", "train", opts);
    assert.equal(train.n, 15);
    assert.deepEqual(
      Array.from(train.labels),
      C10_TRAIN.flat().map((r) => r.label),
    );
    assert.deepEqual([
      train.height,
      train.width,
      train.channels,
      train.numClasses,
    ], [32, 32, 3, 10]);
    assert.equal(train.classNames?.[0], "airplane");
    // last record of the last batch, pixel (31, 31, blue)
    const last = C10_TRAIN[4][2].pixels;
    assert.ok(
      Math.abs(train.images[train.images.length - 1] - last[3071] / 255) < 1e-7,
    );
    assert.deepEqual(await listTree(dataDir), [
      "cifar-10-batches-bin/",
      "cifar-10-batches-bin/batches.meta.txt",
      "cifar-10-batches-bin/data_batch_1.bin",
      "cifar-10-batches-bin/data_batch_2.bin",
      "cifar-10-batches-bin/data_batch_3.bin",
      "cifar-10-batches-bin/data_batch_4.bin",
      "cifar-10-batches-bin/data_batch_5.bin",
      "cifar-10-batches-bin/test_batch.bin",
      "cifar-10-binary.tar.gz",
    ]);
    // second load: cache only, no download allowed, no network touched
    const test = await loadDataset("cifar10", "test", {
      dataDir,
      download: false,
      fetch: noNetwork,
      verify: false,
    });
    assert.deepEqual(Array.from(test.labels), [7, 8]);
    assert.equal(srv.hits.get("/c10.tgz"), 1);
    // with verification, the fixture is not the canonical 10000 records
    await assertDataError(
      () => loadDataset("cifar10", "test", { dataDir, download: false }),
      "count_mismatch",
    );
    // the same files read through the dir option, as the folder or its parent
    for (const dir of [dataDir, join(dataDir, "cifar-10-batches-bin")]) {
      const t = await loadDataset("cifar10", "test", {
        dir,
        verify: false,
        fetch: noNetwork,
      });
      assert.deepEqual(t.images, test.images);
    }
  } finally {
    await srv.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("CIFAR-10: wrong checksum or bad archive leaves nothing behind", async () => {
  const dataDir = await Deno.makeTempDir();
  const srv = serveFixtures({
    "/c10.tgz": C10_TGZ,
    "/incomplete.tgz": C10_INCOMPLETE,
  });
  try {
    // the canonical MD5 is not the fixture's
    const e = await assertDataError(
      () => loadDataset("cifar10", "train", { dataDir, url: srv.url("/c10.tgz") }),
      "checksum_mismatch",
      srv.url("/c10.tgz"),
    );
    assert.equal(e.expected, CIFAR_SOURCES.cifar10.md5);
    assert.equal(e.found, md5Hex(C10_TGZ));
    assert.deepEqual(await listTree(dataDir), []);

    await assertDataError(
      () =>
        loadDataset("cifar10", "train", {
          dataDir,
          url: srv.url("/incomplete.tgz"),
          md5: md5Hex(C10_INCOMPLETE),
        }),
      "bad_archive",
      "cifar-10-binary.tar.gz",
    );
    // only the verified archive remains; no half-extracted folder, no temp dirs
    assert.deepEqual(await listTree(dataDir), ["cifar-10-binary.tar.gz"]);

    // a corrupt cached archive is reported (with how to recover), not re-downloaded
    await Deno.writeFile(
      join(dataDir, "cifar-10-binary.tar.gz"),
      C10_TGZ.subarray(0, 5000),
    );
    const c = await assertDataError(
      () => loadDataset("cifar10", "test", { dataDir, fetch: noNetwork }),
      "checksum_mismatch",
      "cifar-10-binary.tar.gz",
    );
    assert.match(c.message, /delete it to re-download/);
  } finally {
    await srv.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("CIFAR: no data and download: false says where to put files and how to download", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    for (
      const [name, folder, archive] of [
        ["cifar10", "cifar-10-batches-bin", "cifar-10-binary.tar.gz"],
        ["cifar100", "cifar-100-binary", "cifar-100-binary.tar.gz"],
      ] as const
    ) {
      const e = await assertDataError(
        () =>
          loadDataset(name, "train", {
            dataDir,
            download: false,
            fetch: noNetwork,
          }),
        "not_available",
        join(dataDir, folder),
      );
      assert.ok(e.message.includes(archive), e.message);
      assert.ok(e.message.includes(CIFAR_SOURCES[name].url), e.message);
      assert.ok(e.message.includes("download: true"), e.message);
      assert.ok(e.message.includes("MECO_DATA_DIR"), e.message);
    }
    const d = await assertDataError(
      () => loadDataset("cifar10", "test", { dir: join(dataDir, "nowhere") }),
      "missing_file",
      "test_batch.bin",
    );
    assert.match(d.message, /cifar-10-batches-bin/);
    // a local dir needs only the requested split's files
    const only = join(dataDir, "only-test");
    await Deno.mkdir(only);
    await Deno.writeFile(join(only, "test_batch.bin"), cifarBytes(C10_TEST));
    const t = await loadDataset("cifar10", "test", {
      dir: only,
      verify: false,
      fetch: noNetwork,
    });
    assert.deepEqual(Array.from(t.labels), [7, 8]);
    await assertDataError(
      () => loadDataset("cifar10", "train", { dir: only, verify: false }),
      "missing_file",
      "data_batch_1.bin",
    );
    await Deno.remove(only, { recursive: true });
    assert.deepEqual(await listTree(dataDir), []);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("CIFAR-100: archive in the cache is verified and extracted; fine and coarse labels", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(dataDir, "cifar-100-binary.tar.gz"), C100_TGZ);
    const opts = {
      dataDir,
      md5: md5Hex(C100_TGZ),
      download: false,
      fetch: noNetwork,
      verify: false,
    };
    const fine = await loadDataset("cifar100", "train", opts);
    assert.deepEqual(Array.from(fine.labels), [90, 91, 92, 93]);
    assert.equal(fine.numClasses, 100);
    assert.equal(fine.classNames?.[99], "worm");
    const coarse = await loadDataset("cifar100", "test", {
      ...opts,
      labels: "coarse",
    });
    assert.deepEqual(Array.from(coarse.labels), [3, 4]);
    assert.equal(coarse.numClasses, 20);
    assert.equal(coarse.classNames?.[3], "food_containers");
    assert.ok(
      Math.abs(coarse.images[2] - C100_TEST[0].pixels[2048] / 255) < 1e-7,
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("extractCifarArchive rejects a member of the wrong record size", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    const bad = gzip(tarBytes([
      {
        name: "cifar-100-binary/train.bin",
        data: cifarBytes(C100_TRAIN, true).subarray(1),
      },
      { name: "cifar-100-binary/test.bin", data: cifarBytes(C100_TEST, true) },
    ]));
    const archive = join(dataDir, "x.tgz");
    await Deno.writeFile(archive, bad);
    await assertDataError(
      () => extractCifarArchive(archive, "cifar100", dataDir),
      "record_size",
      "train.bin",
    );
    assert.deepEqual(await listTree(dataDir), ["x.tgz"]);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
