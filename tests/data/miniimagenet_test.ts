import assert from "node:assert/strict";
import { join } from "node:path";
import { DataError, loadDataset, loadMiniImagenet, PickledArray, readPickle } from "../../lib/data/mod.ts";
import { assertDataError, listTree } from "./_helpers.ts";

// Real pickles written by CPython 3.11 and NumPy 1.24 (Debian's python3-numpy): three tiny splits shaped like
// mini-imagenet-cache-{train,val,test}.pkl at protocols 4, 2 and 5 (NumPy uses _reconstruct, _reconstruct with
// _codecs.encode bytes, and _frombuffer respectively), and one pickle of other plain values:
//
//   import pickle, numpy as np, base64
//   for k, (split, proto, wnids) in enumerate([("train", 4, ["n02", "n01"]), ("val", 2, ["n04", "n03"]),
//                                              ("test", 5, ["n06", "n05"])]):
//       imgs = (np.arange(6 * 4 * 4 * 3, dtype=np.int64).reshape(6, 4, 4, 3) * 7 + k * 50) % 256
//       class_dict = {wnids[0]: [0, 2, 4], wnids[1]: [1, 3, 5]}
//       print(split, base64.b64encode(pickle.dumps({"image_data": imgs.astype(np.uint8), "class_dict": class_dict},
//                                                  protocol=proto)).decode())
//   print("other", base64.b64encode(pickle.dumps({"a": np.array([[1.5, -2.0], [3.25, 4.0]], dtype=">f8"),
//         "n": [1, -2, 70000, 2**40, -(2**40)], "t": (True, None, 0.5)}, protocol=4)).decode())
const B64: Record<"train" | "val" | "test" | "other", string> = {
  train: "gASV9AEAAAAAAAB9lCiMCmltYWdlX2RhdGGUjBVudW1weS5jb3JlLm11bHRpYXJyYXmUjAxfcmVjb25zdHJ1Y3SUk5SMBW51bXB5" +
    "lIwHbmRhcnJheZSTlEsAhZRDAWKUh5RSlChLAShLBksESwRLA3SUaAWMBWR0eXBllJOUjAJ1MZSJiIeUUpQoSwOMAXyUTk5OSv//" +
    "//9K/////0sAdJRiiUIgAQAAAAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tng5+71/AMKERgfJi00O0JJUFdeZWxzeoGI" +
    "j5adpKuyucDHztXc4+rx+P8GDRQbIikwNz5FTFNaYWhvdn2Ei5KZoKeutbzDytHY3+bt9PsCCRAXHiUsMzpBSE9WXWRrcnmAh46V" +
    "nKOqsbi/xs3U2+Lp8Pf+BQwTGiEoLzY9REtSWWBnbnV8g4qRmJ+mrbS7wsnQ197l7PP6AQgPFh0kKzI5QEdOVVxjanF4f4aNlJui" +
    "qbC3vsXM09rh6O/2/QQLEhkgJy41PENKUVhfZm10e4KJkJeepayzusHIz9bd5Ovy+QAHDhUcIyoxOD9GTVRbYmlwd36FjJOaoaiv" +
    "tr3Ey9LZlHSUYowKY2xhc3NfZGljdJR9lCiMA24wMpRdlChLAEsCSwRljANuMDGUXZQoSwFLA0sFZXV1Lg==",
  val: "gAJ9cQAoWAoAAABpbWFnZV9kYXRhcQFjbnVtcHkuY29yZS5tdWx0aWFycmF5Cl9yZWNvbnN0cnVjdApxAmNudW1weQpuZGFycmF5" +
    "CnEDSwCFcQRjX2NvZGVjcwplbmNvZGUKcQVYAQAAAGJxBlgGAAAAbGF0aW4xcQeGcQhScQmHcQpScQsoSwEoSwZLBEsESwN0cQxj" +
    "bnVtcHkKZHR5cGUKcQ1YAgAAAHUxcQ6JiIdxD1JxEChLA1gBAAAAfHERTk5OSv////9K/////0sAdHESYoloBViyAQAAMjlAR05V" +
    "XGNqcXh/wobCjcKUwpvCosKpwrDCt8K+w4XDjMOTw5rDocOow6/DtsO9BAsSGSAnLjU8Q0pRWF9mbXR7woLCicKQwpfCnsKlwqzC" +
    "s8K6w4HDiMOPw5bDncOkw6vDssO5AAcOFRwjKjE4P0ZNVFtiaXB3fsKFwozCk8KawqHCqMKvwrbCvcOEw4vDksOZw6DDp8Ouw7XD" +
    "vAMKERgfJi00O0JJUFdeZWxzesKBwojCj8KWwp3CpMKrwrLCucOAw4fDjsOVw5zDo8Oqw7HDuMO/Bg0UGyIpMDc+RUxTWmFob3Z9" +
    "woTCi8KSwpnCoMKnwq7CtcK8w4PDisORw5jDn8Omw63DtMO7AgkQFx4lLDM6QUhPVl1ka3J5woDCh8KOwpXCnMKjwqrCscK4wr/D" +
    "hsONw5TDm8Oiw6nDsMO3w74FDBMaISgvNj1ES1JZYGdudXzCg8KKwpHCmMKfwqbCrcK0wrvDgsOJw5DDl8Oew6XDrMOzw7oBCA8W" +
    "HSQrMjlAR05VXGNqcXh/wobCjcKUwpvCosKpwrDCt8K+w4XDjMOTw5rDocOow6/DtsO9BAtxE2gHhnEUUnEVdHEWYlgKAAAAY2xh" +
    "c3NfZGljdHEXfXEYKFgDAAAAbjA0cRldcRooSwBLAksEZVgDAAAAbjAzcRtdcRwoSwFLA0sFZXV1Lg==",
  test: "gAWV3AEAAAAAAAB9lCiMCmltYWdlX2RhdGGUjBJudW1weS5jb3JlLm51bWVyaWOUjAtfZnJvbWJ1ZmZlcpSTlCiWIAEAAAAAAABk" +
    "a3J5gIeOlZyjqrG4v8bN1Nvi6fD3/gUMExohKC82PURLUllgZ251fIOKkZifpq20u8LJ0Nfe5ezz+gEIDxYdJCsyOUBHTlVcY2px" +
    "eH+GjZSboqmwt77FzNPa4ejv9v0ECxIZICcuNTxDSlFYX2ZtdHuCiZCXnqWss7rByM/W3eTr8vkABw4VHCMqMTg/Rk1UW2JpcHd+" +
    "hYyTmqGor7a9xMvS2eDn7vX8AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dzj6vH4/wYNFBsiKTA3PkVMU1phaG92fYSL" +
    "kpmgp661vMPK0djf5u30+wIJEBceJSwzOkFIT1ZdZGtyeYCHjpWco6qxuL/GzdTb4unw9/4FDBMaISgvNj2UjAVudW1weZSMBWR0" +
    "eXBllJOUjAJ1MZSJiIeUUpQoSwOMAXyUTk5OSv////9K/////0sAdJRiKEsGSwRLBEsDdJSMAUOUdJRSlIwKY2xhc3NfZGljdJR9" +
    "lCiMA24wNpRdlChLAEsCSwRljANuMDWUXZQoSwFLA0sFZXV1Lg==",
  other: "gASV5wAAAAAAAAB9lCiMAWGUjBVudW1weS5jb3JlLm11bHRpYXJyYXmUjAxfcmVjb25zdHJ1Y3SUk5SMBW51bXB5lIwHbmRhcnJh" +
    "eZSTlEsAhZRDAWKUh5RSlChLAUsCSwKGlGgFjAVkdHlwZZSTlIwCZjiUiYiHlFKUKEsDjAE+lE5OTkr/////Sv////9LAHSUYolD" +
    "ID/4AAAAAAAAwAAAAAAAAABACgAAAAAAAEAQAAAAAAAAlHSUYowBbpRdlChLAUr+////SnARAQCKBgAAAAAAAYoGAAAAAAD/ZYwB" +
    "dJSITkc/4AAAAAAAAIeUdS4=",
};
const bytesOf = (k: keyof typeof B64) => Uint8Array.from(atob(B64[k]), (c) => c.charCodeAt(0));
/** Pixel (i, y, x, c) of split k of the fixtures, as stored (uint8). */
const pixel = (k: number, i: number, y: number, x: number, c: number) =>
  ((i * 48 + y * 12 + x * 3 + c) * 7 + k * 50) % 256;
const SPLITS = ["train", "val", "test"] as const;

async function fixtureDir(files: Partial<Record<(typeof SPLITS)[number], Uint8Array>> = {}): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "meco-mini-" });
  for (const s of SPLITS) {
    const b = s in files ? files[s] : bytesOf(s);
    if (b !== undefined) await Deno.writeFile(join(dir, `mini-imagenet-cache-${s}.pkl`), b);
  }
  return dir;
}

Deno.test("readPickle decodes NumPy arrays at protocols 2, 4 and 5 and plain values", () => {
  SPLITS.forEach((s, k) => {
    const obj = readPickle(bytesOf(s), s) as Map<string, unknown>;
    assert.ok(obj instanceof Map);
    const a = obj.get("image_data");
    assert.ok(a instanceof PickledArray, s);
    assert.deepEqual([a.shape, a.dtype, a.fortran], [[6, 4, 4, 3], "u1", false], s);
    assert.equal(a.data.length, 288);
    for (let j = 0; j < 288; j++) assert.equal(a.data[j], (j * 7 + k * 50) % 256, `${s} byte ${j}`);
    const cd = obj.get("class_dict") as Map<string, number[]>;
    assert.deepEqual([...cd.entries()].map(([w, v]) => [w.slice(0, 2), v]), [["n0", [0, 2, 4]], ["n0", [1, 3, 5]]]);
  });
  const o = readPickle(bytesOf("other"), "other") as Map<string, unknown>;
  const a = o.get("a") as PickledArray;
  assert.deepEqual([a.shape, a.dtype, a.littleEndian], [[2, 2], "f8", false]);
  const dv = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  assert.deepEqual([0, 1, 2, 3].map((i) => dv.getFloat64(8 * i, false)), [1.5, -2, 3.25, 4]);
  assert.deepEqual(o.get("n"), [1, -2, 70000, 2 ** 40, -(2 ** 40)]);
  assert.deepEqual(o.get("t"), [true, null, 0.5]);
});

Deno.test("readPickle: clear errors for non-pickles, truncation and callables it will not run", () => {
  const train = bytesOf("train");
  assert.throws(
    () => readPickle(new TextEncoder().encode("hello"), "x.pkl"),
    (e) => e instanceof DataError && e.fault === "bad_magic" && e.message.startsWith("x.pkl"),
  );
  for (const cut of [3, 40, 200, train.length - 1]) {
    assert.throws(
      () => readPickle(train.subarray(0, cut), "cut.pkl"),
      (e) => e instanceof DataError && e.fault === "truncated",
      `cut at ${cut}`,
    );
  }
  // pickle.dumps(os.system) at protocol 2: b'\x80\x02cposix\nsystem\nq\x00.'; with a call: REDUCE of ('ls',)
  const evil = Uint8Array.from("\x80\x02cposix\nsystem\nX\x02\x00\x00\x00ls\x85R.", (c) => c.charCodeAt(0));
  assert.throws(() => readPickle(evil, "evil.pkl"), (e) => e instanceof DataError && /posix\.system/.test(e.message));
});

Deno.test("MiniImageNet: the three splits merge into sorted classes; the last images of each class are the test split", async () => {
  const dir = await fixtureDir();
  try {
    const opts = { dir, verify: false, testPerClass: 1 };
    const train = await loadMiniImagenet("train", opts);
    const test = await loadMiniImagenet("test", opts);
    assert.deepEqual(train.classNames, ["n01", "n02", "n03", "n04", "n05", "n06"]);
    assert.deepEqual([train.n, test.n, train.numClasses, train.height, train.channels], [12, 6, 6, 4, 3]);
    assert.deepEqual(Array.from(train.labels), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    assert.deepEqual(Array.from(test.labels), [0, 1, 2, 3, 4, 5]);
    // label 0 = n01 (train file, k 0): images [1, 3] train, [5] test; label 3 = n04 (val file, k 1): [0, 2] / [4]
    const img = (ds: typeof train, j: number) => ds.images.subarray(j * 48, (j + 1) * 48);
    const want = (k: number, i: number) =>
      Float32Array.from(
        { length: 48 },
        (_, j) => pixel(k, i, Math.floor(j / 12), Math.floor(j / 3) % 4, j % 3) / 255,
      );
    assert.deepEqual(img(train, 0), want(0, 1));
    assert.deepEqual(img(train, 1), want(0, 3));
    assert.deepEqual(img(test, 0), want(0, 5));
    assert.deepEqual(img(train, 6), want(1, 0));
    assert.deepEqual(img(test, 3), want(1, 4));
    assert.deepEqual(img(test, 5), want(2, 4));
    assert.deepEqual(img(test, 4), want(2, 5));
    // resized while decoding
    const big = await loadMiniImagenet("train", { ...opts, imageSize: 8 });
    assert.deepEqual([big.height, big.width, big.images.length], [8, 8, 12 * 8 * 8 * 3]);
    assert.ok(big.images.every((v) => v >= 0 && v <= 1));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MiniImageNet faults: absent data says where to put it; missing, corrupt or inconsistent files are named", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "meco-nomini-" });
  try {
    const e = await assertDataError(
      () => loadDataset("miniimagenet", "train", { dataDir }),
      "not_available",
      join(dataDir, "miniimagenet"),
    );
    for (
      const needle of [
        "mini-imagenet-cache-train.pkl",
        "mini-imagenet-cache-test.pkl",
        "MECO_DATA_DIR",
        "image_data",
        "class_dict",
      ]
    ) {
      assert.ok(e.message.includes(needle), `message lacks ${needle}: ${e.message}`);
    }
    assert.deepEqual(await listTree(dataDir), []);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
  const cases: [string, Partial<Record<(typeof SPLITS)[number], Uint8Array>>, string, string][] = [
    ["missing val", { val: undefined }, "missing_file", "mini-imagenet-cache-val.pkl"],
    ["truncated test", { test: bytesOf("test").subarray(0, 300) }, "truncated", "mini-imagenet-cache-test.pkl"],
    ["not a pickle", { train: new Uint8Array(100) }, "bad_magic", "mini-imagenet-cache-train.pkl"],
    ["wrong contents", { val: bytesOf("other") }, "bad_header", "mini-imagenet-cache-val.pkl"],
    ["class in two files", { val: bytesOf("train") }, "bad_header", "mini-imagenet-cache-val.pkl"],
  ];
  for (const [what, files, fault, file] of cases) {
    const dir = await fixtureDir(files);
    try {
      await assertDataError(
        () => loadMiniImagenet("train", { dir, verify: false, testPerClass: 1 }),
        fault as never,
        file,
      );
    } catch (err) {
      throw new Error(`${what}: ${err}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  const dir = await fixtureDir();
  try {
    const c = await assertDataError(() => loadMiniImagenet("test", { dir }), "count_mismatch", dir);
    assert.match(c.message, /100 classes.*expected 100, found 6/);
    await assertDataError(
      () => loadMiniImagenet("test", { dir, verify: false, testPerClass: 3 }),
      "count_mismatch",
      dir,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
