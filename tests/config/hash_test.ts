import assert from "node:assert/strict";
import { canonicalJson, configHash, parseConfig } from "../../lib/config/mod.ts";
import { minimalConfig, toYaml } from "./fixture.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

function reverseKeys(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(reverseKeys);
  if (x !== null && typeof x === "object") {
    return Object.fromEntries(
      Object.entries(x).reverse().map(([k, v]) => [k, reverseKeys(v)]),
    );
  }
  return x;
}

Deno.test("canonicalJson sorts keys recursively, keeps array order, drops undefined members", () => {
  assert.equal(
    canonicalJson({ z: "x", a: [1, { c: null, b: true }] }),
    '{"a":[1,{"b":true,"c":null}],"z":"x"}',
  );
  assert.equal(canonicalJson({ b: 1, a: undefined }), '{"b":1}');
  assert.notEqual(canonicalJson([1, 2]), canonicalJson([2, 1]));
  assert.throws(() => canonicalJson({ a: Infinity }), TypeError);
  assert.throws(() => canonicalJson([undefined]), TypeError);
});

Deno.test("configHash is SHA-256 hex of the canonical JSON (known value)", async () => {
  // python3 -c 'import hashlib; print(hashlib.sha256(b"{\"a\":[1,{\"b\":true,\"c\":null}],\"z\":\"x\"}").hexdigest())'
  assert.equal(
    await configHash({ z: "x", a: [1, { c: null, b: true }] }),
    "fd2c4112ff5be536f08829d65f25fae74c3a45d60da41d37c38cf0c6919b675f",
  );
});

Deno.test("config hash ignores key order and formatting, follows every value", async () => {
  const c = minimalConfig();
  const a = await parseConfig(toYaml(c), "a.yaml", "local");
  const b = await parseConfig(toYaml(reverseKeys(c)), "b.yaml", "local");
  const flow = await parseConfig(JSON.stringify(c), "c.json", "local"); // JSON is YAML too
  assert.match(a.hash, /^[0-9a-f]{64}$/);
  assert.equal(a.hash, b.hash);
  assert.equal(a.hash, flow.hash);
  assert.equal(a.hash, await configHash(a.config));

  const changed = minimalConfig() as Obj;
  changed.victim.train.lr = 0.011;
  assert.notEqual(
    (await parseConfig(toYaml(changed), "a.yaml", "local")).hash,
    a.hash,
  );
  const reordered = minimalConfig() as Obj;
  reordered.seeds = [0, 1];
  const r1 = await parseConfig(toYaml(reordered), "a.yaml", "local");
  reordered.seeds = [1, 0];
  const r2 = await parseConfig(toYaml(reordered), "a.yaml", "local");
  assert.notEqual(r1.hash, r2.hash, "array order matters");
});

Deno.test("the hash is of the resolved config: spelled-out defaults hash like omitted ones", async () => {
  const implicit = minimalConfig();
  const explicit = minimalConfig() as Obj;
  explicit.attacks[0].batch_size = 256;
  explicit.output = { dir: "results/tiny_test" };
  explicit.victim.width = 1;
  const h1 = (await parseConfig(toYaml(implicit), "i.yaml", "local")).hash;
  const h2 = (await parseConfig(toYaml(explicit), "e.yaml", "local")).hash;
  assert.equal(h1, h2);
  // ...and the file name or profile label alone do not change it.
  assert.equal(
    (await parseConfig(toYaml(implicit), "other.yaml", "smoke")).hash,
    h1,
  );
});
