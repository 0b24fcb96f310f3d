import { deriveSeed, mulberry32, randomInt, shuffleInPlace } from "../../lib/data/rng.ts";
import { assert } from "./_helpers.ts";

Deno.test("mulberry32 matches an independent reference and is seeded", () => {
  // reference values from a separate Python implementation of mulberry32
  const r0 = mulberry32(0);
  assert.deepEqual([r0(), r0(), r0()], [
    0.26642920868471265,
    0.0003297457005828619,
    0.2232720274478197,
  ]);
  const r42 = mulberry32(42);
  assert.deepEqual([r42(), r42(), r42()], [
    0.6011037519201636,
    0.44829055899754167,
    0.8524657934904099,
  ]);
  // seeds are taken modulo 2^32
  assert.equal(mulberry32(2 ** 32 + 42)(), 0.6011037519201636);
  const a = mulberry32(7), b = mulberry32(8);
  assert.notEqual(a(), b());
});

Deno.test("mulberry32 is roughly uniform; randomInt stays in range", () => {
  const rand = mulberry32(123);
  const bins = new Array(10).fill(0);
  for (let i = 0; i < 100_000; i++) {
    const x = rand();
    assert.ok(x >= 0 && x < 1);
    bins[Math.floor(x * 10)]++;
  }
  for (const c of bins) assert.ok(c > 9_500 && c < 10_500, `bin count ${c}`);
  const r = mulberry32(5);
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const k = randomInt(r, 7);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 7);
    seen.add(k);
  }
  assert.equal(seen.size, 7);
});

Deno.test("shuffleInPlace permutes arrays and typed arrays reproducibly", () => {
  const a = shuffleInPlace(
    Array.from({ length: 50 }, (_, i) => i),
    mulberry32(1),
  );
  const b = shuffleInPlace(
    Int32Array.from({ length: 50 }, (_, i) => i),
    mulberry32(1),
  );
  assert.deepEqual(Array.from(b), a);
  assert.deepEqual(
    [...a].sort((x, y) => x - y),
    Array.from({ length: 50 }, (_, i) => i),
  );
  assert.notDeepEqual(a, Array.from({ length: 50 }, (_, i) => i));
});

Deno.test("deriveSeed is deterministic and separates salts", () => {
  assert.equal(deriveSeed(1, 2), deriveSeed(1, 2));
  const seeds = new Set([
    deriveSeed(1),
    deriveSeed(1, 0),
    deriveSeed(1, 1),
    deriveSeed(1, 0, 0),
    deriveSeed(2, 0),
    deriveSeed(1, 2),
  ]);
  assert.equal(seeds.size, 6);
  for (const s of seeds) {
    assert.ok(Number.isInteger(s) && s >= 0 && s < 2 ** 32);
  }
});
