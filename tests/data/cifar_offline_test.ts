import { join } from "node:path";
import { CIFAR_SOURCES } from "../../lib/data/cifar_source.ts";
import { loadDataset } from "../../lib/data/registry.ts";
import { assert, assertDataError, listTree } from "./_helpers.ts";

Deno.test("CIFAR: a failed download (no network) says where to put the files, and leaves nothing behind", async () => {
  const dataDir = await Deno.makeTempDir();
  const offline: typeof fetch = () => Promise.reject(new TypeError("error sending request: dns error"));
  try {
    for (
      const [name, archive] of [["cifar10", "cifar-10-binary.tar.gz"], ["cifar100", "cifar-100-binary.tar.gz"]] as const
    ) {
      const e = await assertDataError(
        () => loadDataset(name, "test", { dataDir, fetch: offline }),
        "download_failed",
        CIFAR_SOURCES[name].url,
      );
      for (const needle of ["dns error", join(dataDir, archive), "MECO_DATA_DIR", CIFAR_SOURCES[name].md5]) {
        assert.ok(e.message.includes(needle), `message lacks '${needle}': ${e.message}`);
      }
    }
    assert.deepEqual(await listTree(dataDir), []);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
