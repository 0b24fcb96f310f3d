/**
 * In-process checks of the serving pieces that need no server: configs with
 * bad fields, a missing bundle, the key store's refusals and its atomic
 * budget, and the request decoder.
 */
import assert from "node:assert/strict";
import { ConfigError, DefenseSchema, ServeDefenseSchema } from "../../lib/config/mod.ts";
import { loadBundle } from "../../lib/serve/bundle.ts";
import { parseServeConfig } from "../../lib/serve/config.ts";
import { decodeImages, encodeBase64 } from "../../lib/serve/decode.ts";
import { loadLoadConfig } from "../../lib/serve/load_config.ts";
import { hashToken, KeyStore, StoreError } from "../../lib/serve/store.ts";
import { ApiError } from "../../lib/serve/api_error.ts";
import { CheckpointError } from "../../lib/train/checkpoint.ts";

Deno.test("serve config: defaults, and every bad field named with its line", () => {
  const ok = parseServeConfig("bundle: b\ndefense: { type: meco }\nstore: s.db\n", "ok.yaml");
  assert.equal(ok.port, 8080);
  assert.equal(ok.host, "127.0.0.1");
  assert.equal(ok.limits.max_batch, 256);
  assert.equal(ok.seed, undefined);
  const bad = "bundle: b\ndefense: { type: mecco }\nstore: s.db\nport: 70000\nlimits: { max_batch: 0 }\ncolour: red\n";
  let msg = "";
  try {
    parseServeConfig(bad, "bad.yaml");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    msg = e.message;
  }
  assert.match(msg, /bad\.yaml: defense\.type: .*meco.*\(line 2/);
  assert.match(msg, /bad\.yaml: port: .*65535.*\(line 4/);
  assert.match(msg, /bad\.yaml: limits\.max_batch: .*\(line 5/);
  assert.match(msg, /bad\.yaml: colour: unknown key/);
  // meco's trained settings come from the bundle: training fields are refused here.
  assert.throws(
    () => parseServeConfig("bundle: b\ndefense: { type: meco, gamma: 1 }\nstore: s\n", "m.yaml"),
    /defense\.gamma: unknown key/,
  );
  const mad = parseServeConfig("bundle: b\ndefense: { type: mad, eps: 1 }\nstore: s\n", "mad.yaml");
  assert.equal(mad.defense.type, "mad");
});

Deno.test("serve config: the defenses are the experiment config's, fields and all; meco's come from the bundle", () => {
  const types = [...DefenseSchema.optionsMap.keys()];
  assert.deepEqual([...ServeDefenseSchema.optionsMap.keys()], types);
  for (const t of types) {
    if (t === "meco") continue;
    assert.equal(
      ServeDefenseSchema.optionsMap.get(t),
      DefenseSchema.optionsMap.get(t),
      `${String(t)}: not the same schema`,
    );
  }
  const parse = (defense: string) => () => parseServeConfig(`bundle: b\ndefense: ${defense}\nstore: s\n`, "d.yaml");
  // Every fault is a ConfigError naming the field, what it expects, and its line.
  assert.throws(parse("{ type: randp }"), /d\.yaml: defense\.eps: missing required field \(expected number\) \(line 2/);
  assert.throws(
    parse("{ type: mecco }"),
    new RegExp(`defense\\.type: expected one of ${types.map((t) => `"${String(t)}"`).join(", ")}, received "mecco"`),
  );
  assert.throws(parse("{ name: x }"), /defense\.type: expected one of .*, received nothing \(line 2/);
  assert.throws(parse("{ type: grad, eps: 1, scope: all }"), /defense\.scope: expected one of "head", "full"/);
  assert.throws(parse("{ type: meco, variant: official }"), /defense\.variant: unknown key \(allowed: name, type\)/);
  const ok = parseServeConfig("bundle: b\ndefense: { type: grad, eps: 1 }\nstore: s\n", "g.yaml");
  assert.deepEqual(ok.defense, DefenseSchema.parse({ type: "grad", eps: 1 }));
});

Deno.test("load config: the committed one is valid; bad ones are named", async () => {
  const cfg = await loadLoadConfig("configs/serve_load.yaml");
  assert.deepEqual(cfg.defenses.map((d) => d.type), ["none", "meco", "mad"]);
  const dir = await Deno.makeTempDir();
  try {
    const write = async (lines: string[]) => {
      const p = `${dir}/l.yaml`;
      await Deno.writeTextFile(p, lines.join("\n"));
      return p;
    };
    const base = (profile: string, defenses: string, batch: number) => [
      "name: x",
      "description: d",
      `bundle: { experiment: e.yaml, profile: ${profile}, out: o }`,
      `defenses: ${defenses}`,
      `load: { clients: 4, requests: 1, batch: ${batch} }`,
      "drain: { clients: 4, budget: 10, max_batch: 2 }",
    ];
    await assert.rejects(
      loadLoadConfig(await write(base("tiny", "[{ type: none }]", 1))),
      /l\.yaml: bundle\.profile: .*"tiny" \(line 3/,
    );
    await assert.rejects(
      loadLoadConfig(await write(base("smoke", "[{ type: none }, { type: none }]", 300))),
      (e: Error) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /defenses\.1\.name: duplicate label "none"/);
        assert.match(e.message, /load\.batch: expected at most limits\.max_batch \(256\)/);
        return true;
      },
    );
    await assert.rejects(loadLoadConfig(`${dir}/absent.yaml`), /file not found/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bundle: a missing or foreign bundle is a CheckpointError naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(loadBundle(`${dir}/none`), (e: Error) => {
      assert.ok(e instanceof CheckpointError);
      assert.match(e.message, /none\/bundle\.json: missing.*export-model/);
      return true;
    });
    await Deno.writeTextFile(`${dir}/bundle.json`, JSON.stringify({ format: "other/9" }));
    await assert.rejects(loadBundle(dir), /format "other\/9", expected meco-serve-bundle\/1/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("key store: hashed tokens, refusals, atomic budget across two handles", async () => {
  const dir = await Deno.makeTempDir();
  const a = KeyStore.open(`${dir}/k.db`), b = KeyStore.open(`${dir}/k.db`);
  try {
    await assert.rejects(a.create({ tier: "soft", budget: -1 }), StoreError);
    await assert.rejects(a.create({ tier: "medium" as "soft", budget: 1 }), /tier must be/);
    const { token, key } = await a.create({ name: "k", tier: "hard", budget: 10 });
    assert.match(token, /^meco_[A-Za-z0-9_-]{43}$/);
    assert.equal((await b.lookup(token))?.id, key.id);
    assert.equal(await b.lookup("meco_other"), undefined);
    assert.notEqual(await hashToken(token), token);
    // Interleaved charges from two connections: exactly the budget is granted.
    const grants = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).charge(token, 3)));
    assert.equal(grants.filter((g) => g.ok).length, 3);
    const refused = grants.find((g) => !g.ok);
    assert.ok(refused && !refused.ok && refused.reason === "budget" && refused.key.used === 9);
    assert.equal((await a.charge(token, 1)).ok, true);
    assert.equal((await a.charge(token, 1)).ok, false);
    await b.refund(token, 2);
    assert.equal((await a.lookup(token))?.used, 8);
    assert.deepEqual(await a.charge("meco_unknown", 1), { ok: false, reason: "unknown" });
    await a.create({ name: "twin", tier: "soft", budget: 1 });
    await a.create({ name: "twin", tier: "soft", budget: 1 });
    assert.throws(() => a.revoke("twin"), /2 keys are named "twin"; revoke one by its id: k_/);
    assert.throws(() => a.revoke("nobody"), /no key with id or name "nobody"/);
    const r = b.revoke(key.id);
    assert.ok(r.revoked !== null);
    const c = await a.charge(token, 1);
    assert.ok(!c.ok && c.reason === "revoked");
    assert.equal(a.list().length, 3);
    await assert.rejects(a.charge(token, 0), /positive integer/);
  } finally {
    a.close();
    b.close();
    await Deno.remove(dir, { recursive: true });
  }
  assert.throws(() => KeyStore.open(`${dir}/no/such/dir/k.db`), StoreError);
});

Deno.test("decode: both encodings agree; faults are ApiErrors with codes", () => {
  const spec = { imageShape: [2, 2, 1] as const, maxBatch: 2 };
  const vals = [0, 0.25, 0.5, 1];
  const nested = decodeImages({ images: [[[[0], [0.25]], [[0.5], [1]]]] }, spec);
  const b64 = decodeImages({ images_b64: encodeBase64(Float32Array.from(vals)), shape: [1, 2, 2, 1] }, spec);
  assert.deepEqual(Array.from(nested.data), vals);
  assert.deepEqual(Array.from(b64.data), vals);
  const code = (body: unknown) => {
    try {
      decodeImages(body, spec);
    } catch (e) {
      assert.ok(e instanceof ApiError);
      return `${e.status} ${e.code}`;
    }
    return "accepted";
  };
  assert.equal(
    code({ images: [[[[0], [0]], [[0], [0]]], [[[0], [0]], [[0], [0]]], [[[0], [0]], [[0], [0]]]] }),
    "413 batch_too_large",
  );
  assert.equal(code({ images: [[[[0], [0]], [[0], [0]]]], shape: [1] }), "400 invalid_request");
  assert.equal(code({ images: [], images_b64: "" }), "400 invalid_request");
  assert.equal(code({ images_b64: "AAAA", shape: [1, 2, 2, 1.5] }), "400 invalid_request");
  assert.equal(code({ images_b64: "AAA=A", shape: [1, 2, 2, 1] }), "400 malformed_base64");
  assert.equal(code({ images: [[[[0], [0]], [[0], null]]] }), "422 wrong_shape");
  assert.equal(code({ images: [[[[0], [0]], [[0], [0, 1]]]] }), "422 wrong_channels");
  assert.equal(code({ images: [[[[0], [0]], [[0], [1.0000001]]]] }), "422 out_of_range");
  assert.equal(code(null), "400 invalid_request");
});
