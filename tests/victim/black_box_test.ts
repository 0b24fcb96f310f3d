import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/mod.ts";
import { type Defense, undefended } from "../../lib/defenses/mod.ts";
import { lenet5 } from "../../lib/models/lenet.ts";
import { BlackBox, BudgetExceededError, DefenseOutputError, detach, QueryShapeError } from "../../lib/victim/mod.ts";

await initBackend("wasm");

const SHAPE = [28, 28, 1] as const;
const images = (n: number, seed = 1) => tf.randomUniform([n, ...SHAPE], -1, 1, "float32", seed) as tf.Tensor4D;

function withVictim<T>(fn: (model: tf.LayersModel, bb: BlackBox<"soft">) => T, budget = 1000): T {
  const model = lenet5({ seed: 0 });
  try {
    return fn(model, new BlackBox(undefended(model), { imageShape: SHAPE, numClasses: 10, budget }));
  } finally {
    model.dispose();
  }
}

Deno.test("BlackBox counts every image over mixed batch sizes", () => {
  withVictim((_, bb) => {
    let expected = 0;
    for (const n of [1, 7, 64, 3, 128, 1]) {
      const x = images(n);
      const p = bb.query(x);
      assert.deepEqual(p.shape, [n, 10]);
      const sums = tf.tidy(() => tf.sum(p, 1).arraySync() as number[]);
      assert.ok(sums.every((s) => Math.abs(s - 1) < 1e-5), "soft answers are probabilities");
      tf.dispose([x, p]);
      expected += n;
      assert.equal(bb.queries, expected);
      assert.equal(bb.remaining, 1000 - expected);
    }
  });
});

Deno.test("BlackBox refuses a query past the budget and counts nothing", () => {
  withVictim((_, bb) => {
    const [x60, x41, x40, x1] = [60, 41, 40, 1].map((n) => images(n));
    bb.query(x60).dispose();
    assert.throws(() => bb.query(x41), (e: unknown) => {
      assert.ok(e instanceof BudgetExceededError);
      assert.equal(e.used, 60);
      assert.equal(e.requested, 41);
      assert.equal(e.budget, 100);
      assert.match(e.message, /60 of 100 queries used, this query asks for 41 more \(40 remaining\)/);
      return true;
    });
    assert.equal(bb.queries, 60);
    bb.query(x40).dispose(); // exactly up to the budget is allowed
    assert.equal(bb.queries, 100);
    assert.equal(bb.remaining, 0);
    assert.throws(() => bb.query(x1), BudgetExceededError);
    assert.equal(bb.queries, 100);
    tf.dispose([x60, x41, x40, x1]);
  }, 100);
});

Deno.test("BlackBox validates the query shape and counts nothing for a bad one", () => {
  withVictim((_, bb) => {
    const bad = [
      tf.zeros([2, 32, 32, 3]),
      tf.zeros([2, 28, 28]),
      tf.zeros([0, 28, 28, 1]),
      tf.zeros([2, 28, 28, 1], "int32"),
    ];
    for (const x of bad) {
      assert.throws(() => bb.query(x as tf.Tensor4D), (e: unknown) => {
        assert.ok(e instanceof QueryShapeError);
        assert.match(e.message, /expected images of shape \[n, 28, 28, 1\] float32/);
        assert.match(e.message, new RegExp(`found \\[${x.shape.join(", ")}\\]`));
        return true;
      });
    }
    assert.throws(() => bb.query([1, 2] as unknown as tf.Tensor4D), QueryShapeError);
    assert.equal(bb.queries, 0);
    tf.dispose(bad);
  });
});

Deno.test("BlackBox hard mode answers the argmax labels", () => {
  const probs = [[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], [0.1, 0.1, 0.8], [0.2, 0.3, 0.5]];
  const fixed: Defense = { name: "fixed", predict: (x) => tf.tensor2d(probs.slice(0, x.shape[0])), dispose: () => {} };
  const hard = new BlackBox(fixed, { imageShape: [4, 4, 1], numClasses: 3, budget: 10, labels: "hard" });
  const soft = new BlackBox(fixed, { imageShape: [4, 4, 1], numClasses: 3, budget: 10 });
  const x = tf.zeros([4, 4, 4, 1]) as tf.Tensor4D;
  const y = hard.query(x);
  assert.equal(y.dtype, "int32");
  assert.deepEqual(y.shape, [4]);
  assert.deepEqual(Array.from(y.dataSync()), [1, 0, 2, 2]);
  assert.equal(hard.labels, "hard");
  assert.equal(hard.queries, 4);
  const p = soft.query(x);
  assert.deepEqual(p.arraySync(), tf.tidy(() => tf.tensor2d(probs).arraySync()));
  tf.dispose([x, y, p]);
});

Deno.test("BlackBox hard labels agree with the victim's argmax", () => {
  const model = lenet5({ seed: 3 });
  const bb = new BlackBox(undefended(model), { imageShape: SHAPE, numClasses: 10, budget: 100, labels: "hard" });
  const x = images(50, 9);
  const y = bb.query(x);
  const want = tf.tidy(() => Array.from(tf.argMax(model.predict(x) as tf.Tensor, 1).dataSync()));
  assert.deepEqual(Array.from(y.dataSync()), want);
  tf.dispose([x, y]);
  model.dispose();
});

Deno.test("BlackBox rejects a defense answer of the wrong shape", () => {
  const five: Defense = { name: "five", predict: (x) => tf.zeros([x.shape[0], 5]) as tf.Tensor2D, dispose: () => {} };
  const bb = new BlackBox(five, { imageShape: [4, 4, 1], numClasses: 10, budget: 10 });
  const x = tf.zeros([2, 4, 4, 1]) as tf.Tensor4D;
  assert.throws(() => bb.query(x), DefenseOutputError);
  assert.equal(bb.queries, 0);
  x.dispose();
});

Deno.test("BlackBox spent: a resumed run starts from the queries already spent", () => {
  withVictim((model) => {
    const bb = new BlackBox(undefended(model), { imageShape: SHAPE, numClasses: 10, budget: 100, spent: 90 });
    assert.equal(bb.queries, 90);
    assert.equal(bb.remaining, 10);
    const x = images(11);
    assert.throws(() => bb.query(x), BudgetExceededError);
    x.dispose();
    assert.throws(
      () => new BlackBox(undefended(model), { imageShape: SHAPE, numClasses: 10, budget: 100, spent: 101 }),
      RangeError,
    );
    assert.throws(
      () => new BlackBox(undefended(model), { imageShape: SHAPE, numClasses: 10, budget: 100, spent: -1 }),
      RangeError,
    );
  });
});

Deno.test("an attack cannot reach the model behind a BlackBox", () => {
  withVictim((model, bb) => {
    const weights = weightValues(model);
    const any = bb as unknown as Record<string, unknown>;
    assert.deepEqual(Object.keys(bb), []);
    assert.deepEqual(Reflect.ownKeys(bb), []);
    assert.deepEqual(Object.getOwnPropertyNames(bb), []);
    for (const k of ["model", "oracle", "defense", "predict", "victim", "_model", "#oracle", "#defense"]) {
      assert.equal(any[k], undefined, k);
    }
    const json = JSON.stringify(bb);
    assert.deepEqual(JSON.parse(json), {
      protocol: "real black box",
      labels: "soft",
      budget: 1000,
      queries: 0,
      imageShape: [28, 28, 1],
      numClasses: 10,
    });
    assert.doesNotMatch(Deno.inspect(bb, { depth: 10, showHidden: true }), /kernel|lenet|predict|oracle/i);
    // Only the prototype's public API: getters and methods, no field holding anything.
    const proto = Object.getOwnPropertyNames(Object.getPrototypeOf(bb)).sort();
    assert.deepEqual(proto, [
      "budget",
      "constructor",
      "imageShape",
      "labels",
      "numClasses",
      "protocol",
      "queries",
      "query",
      "queryForEstimation",
      "remaining",
      "toJSON",
    ]);
    for (const v of Object.values(Object.getOwnPropertyDescriptors(Object.getPrototypeOf(bb)))) {
      if (v.get) assert.ok(!(v.get.call(bb) instanceof tf.LayersModel));
    }
    // The instance is frozen: nothing can be attached or replaced on it.
    assert.ok(Object.isFrozen(bb));
    assert.throws(() => {
      any.query = () => null;
    }, TypeError);
    // Answers are detached: no gradient of the victim flows back through a query.
    const x = images(2);
    assert.throws(() => tf.grad((v: tf.Tensor) => tf.sum(bb.query(v as tf.Tensor4D)))(x), /Cannot compute gradient/);
    // None of this probing touched the model: the same 61,706 LeNet-5 parameters, values unchanged, and the black
    // box still answers exactly the model's probabilities.
    assert.equal(model.countParams(), 6 * 25 + 6 + 16 * 6 * 25 + 16 + 400 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10);
    assert.deepEqual(weightValues(model), weights);
    const answer = bb.query(x);
    const direct = tf.tidy(() => tf.softmax(model.predict(x) as tf.Tensor2D));
    assert.deepEqual(answer.dataSync(), direct.dataSync());
    tf.dispose([x, answer, direct]);
  });
});

function weightValues(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));
}

Deno.test("queries keep no tensors alive", () => {
  withVictim((_, bb) => {
    const x = images(8);
    bb.query(x).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) bb.query(x).dispose();
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
  });
});

Deno.test("detach shares values and blocks gradients", () => {
  const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(x, detach(tf.square(x)))));
  const x = tf.tensor1d([3, -2]);
  const dx = g(x);
  assert.deepEqual(Array.from(dx.dataSync()), [9, 4]);
  const before = tf.memory().numTensors;
  const a = tf.tensor1d([1, 2]);
  const b = detach(a);
  a.dispose();
  assert.deepEqual(Array.from(b.dataSync()), [1, 2]);
  b.dispose();
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, dx]);
});

Deno.test("the official protocol: estimation queries see the undefended target, every query counts, and it is named", () => {
  const model = lenet5({ seed: 0 });
  try {
    const undefendedAnswer = undefended(model);
    // A defense that answers uniform probabilities whatever the input: easy to tell from the target's answers.
    const uniform: Defense = {
      name: "uniform",
      predict: (x) => tf.fill([x.shape[0], 10], 0.1) as tf.Tensor2D,
      dispose: () => {},
    };
    const x = images(5);
    const real = new BlackBox(uniform, { imageShape: SHAPE, numClasses: 10, budget: 12 });
    const official = new BlackBox(uniform, {
      imageShape: SHAPE,
      numClasses: 10,
      budget: 12,
      estimationOracle: undefendedAnswer,
    });
    assert.equal(real.protocol, "real black box");
    assert.equal(official.protocol, "official (undefended estimation)");
    const clean = undefendedAnswer.predict(x);
    const read = (t: tf.Tensor) => {
      const v = Array.from(t.dataSync());
      t.dispose();
      return v;
    };
    // A real black box answers estimation queries through the defense, like any other query.
    assert.deepEqual(read(real.queryForEstimation(x)), read(real.query(x)));
    // The official protocol answers them with the target's own probabilities, and the rest through the defense.
    const est = read(official.queryForEstimation(x)), cleanValues = read(clean);
    assert.ok(est.every((v, i) => Math.abs(v - cleanValues[i]) < 1e-6));
    assert.ok(read(official.query(x)).every((v) => Math.abs(v - 0.1) < 1e-7));
    assert.equal(official.queries, 10, "both kinds of query count");
    assert.throws(() => official.queryForEstimation(x), /budget/i, "and both are held to the budget");
    assert.equal(official.queries, 10);
    assert.equal(JSON.parse(JSON.stringify(official)).protocol, "official (undefended estimation)");
    tf.dispose(x);
  } finally {
    model.dispose();
  }
});
