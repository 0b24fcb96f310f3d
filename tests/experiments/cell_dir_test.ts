import assert from "node:assert/strict";
import { cacheRoot, cellDir, cellKey } from "../../lib/experiments/cache.ts";
import { unlabeled } from "../../lib/experiments/cells.ts";

Deno.test("cell dirs ignore labels, and reuse a finished cell stored under the older labeled key", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "meco-celldir-" });
  const old = Deno.env.get("MECO_CACHE_DIR");
  Deno.env.set("MECO_CACHE_DIR", tmp);
  try {
    const d = { name: "meco gamma=10", type: "meco", gamma: 10 };
    const parts = (defense: unknown) => ({ defense, seed: 0 });
    const fresh = `${cacheRoot()}/${await cellKey("meco", parts(unlabeled(d)))}`;
    const legacy = `${cacheRoot()}/${await cellKey("meco", parts(d))}`;
    assert.notEqual(fresh, legacy);
    assert.equal(await cellKey("meco", parts(unlabeled(d))), await cellKey("meco", parts({ type: "meco", gamma: 10 })));
    // Nothing cached: the unlabeled key.
    assert.equal(await cellDir("meco", parts(unlabeled(d)), "meta.json", parts(d)), fresh);
    // An unfinished legacy cell (no marker) is not reused.
    await Deno.mkdir(legacy, { recursive: true });
    assert.equal(await cellDir("meco", parts(unlabeled(d)), "meta.json", parts(d)), fresh);
    // A finished legacy cell is.
    await Deno.writeTextFile(`${legacy}/meta.json`, "{}");
    assert.equal(await cellDir("meco", parts(unlabeled(d)), "meta.json", parts(d)), legacy);
    assert.equal(await cellDir("meco", parts(unlabeled(d)), "meta.json"), fresh);
    // Once the unlabeled cell exists it wins.
    await Deno.mkdir(fresh, { recursive: true });
    await Deno.writeTextFile(`${fresh}/meta.json`, "{}");
    assert.equal(await cellDir("meco", parts(unlabeled(d)), "meta.json", parts(d)), fresh);
  } finally {
    if (old === undefined) Deno.env.delete("MECO_CACHE_DIR");
    else Deno.env.set("MECO_CACHE_DIR", old);
    await Deno.remove(tmp, { recursive: true });
  }
});
