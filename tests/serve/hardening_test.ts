/**
 * The request handler under hostile clients, in process (a stand-in defense,
 * no trained model): an exhausted key refused before its body is read, JSON
 * bodies nested too deep or holding too many elements refused while they
 * arrive, a client that disconnects mid-body logged as an abort, and logs
 * that never carry a query string.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import type { Defense } from "../../lib/defenses/defense.ts";
import { ApiError } from "../../lib/serve/api_error.ts";
import { createHandler } from "../../lib/serve/app.ts";
import { JsonGuard, predictLimits } from "../../lib/serve/json_guard.ts";
import { KeyStore } from "../../lib/serve/store.ts";

const SHAPE = [4, 4, 1] as const;
const MAX_BATCH = 8;
const MAX_BODY = 1 << 20;

/** A defense that answers uniform probabilities, or throws when `fail` is set. */
function stubDefense(fail = false): Defense {
  return {
    name: "stub",
    predict: (x: tf.Tensor4D) => {
      if (fail) throw new Error("stub defense failed");
      return tf.fill([x.shape[0], 10], 0.1) as tf.Tensor2D;
    },
    dispose: () => {},
  };
}

async function withStore<T>(fn: (store: KeyStore, dir: string) => Promise<T>): Promise<T> {
  await tf.setBackend("cpu");
  const dir = await Deno.makeTempDir({ prefix: "meco-harden-" });
  const store = KeyStore.open(`${dir}/keys.db`);
  try {
    return await fn(store, dir);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function handlerFor(store: KeyStore, fail = false): (req: Request) => Promise<Response> {
  return createHandler({
    defense: stubDefense(fail),
    defenseLabel: "stub",
    imageShape: SHAPE,
    numClasses: 10,
    store,
    maxBodyBytes: MAX_BODY,
    maxBatch: MAX_BATCH,
    model: "test/stub",
  });
}

/** A body served in `chunks`, pulled one at a time (nothing is read ahead); `pulled()` counts the reads. */
function countingBody(chunks: Uint8Array[]): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < chunks.length) c.enqueue(chunks[i++]);
      else c.close();
    },
  }, { highWaterMark: 0 });
  return { stream, pulled: () => i };
}

function chunked(text: string, size: number): Uint8Array[] {
  const bytes = new TextEncoder().encode(text);
  const out: Uint8Array[] = [];
  for (let o = 0; o < bytes.length; o += size) out.push(bytes.subarray(o, o + size));
  return out;
}

function post(token: string, body: BodyInit, path = "/v1/predict"): Request {
  return new Request(`http://127.0.0.1${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body,
  });
}

const image = () => Array.from({ length: SHAPE[0] }, () => Array.from({ length: SHAPE[1] }, () => [0.5]));

/** Captures console.error and console.log lines while `fn` runs. */
async function captureLogs(fn: (lines: string[]) => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  const { error, log, warn } = console;
  const grab = (...a: unknown[]) => {
    lines.push(a.map((x) => (x instanceof Error ? `${x.stack}` : String(x))).join(" "));
  };
  console.error = grab;
  console.log = grab;
  console.warn = grab;
  try {
    await fn(lines);
  } finally {
    console.error = error;
    console.log = log;
    console.warn = warn;
  }
  return lines;
}

Deno.test("predict: a key with no budget left is refused (429) before any of its body is read", async () => {
  await withStore(async (store) => {
    const handler = handlerFor(store);
    const { token } = await store.create({ name: "spent", tier: "soft", budget: 2 });
    const ok = await handler(post(token, JSON.stringify({ images: [image(), image()] })));
    assert.equal(ok.status, 200, await ok.clone().text());
    await ok.body?.cancel();
    const body = countingBody(chunked(JSON.stringify({ images: [image()] }), 16));
    const res = await handler(post(token, body.stream));
    const json = await res.json();
    assert.equal(res.status, 429);
    assert.equal(json.error.code, "budget_exceeded");
    assert.deepEqual([json.error.used, json.error.budget, json.error.remaining], [2, 2, 0]);
    assert.equal(body.pulled(), 0, "the body of an exhausted key is never read");
    assert.equal((await store.lookup(token))?.used, 2);
  });
});

Deno.test("predict: JSON nested too deep is refused while it arrives, not after reading and parsing it", async () => {
  await withStore(async (store) => {
    const handler = handlerFor(store);
    const { token } = await store.create({ name: "deep", tier: "soft", budget: 100 });
    // 1 MB of '[' (the attack was 8 MB): 16 chunks of 64 KiB.
    const chunks = chunked('{"images":' + "[".repeat((1 << 20) - 20), 1 << 16);
    const body = countingBody(chunks);
    const res = await handler(post(token, body.stream));
    const json = await res.json();
    assert.equal(res.status, 400, JSON.stringify(json));
    assert.equal(json.error.code, "json_too_deep");
    assert.match(json.error.message, /nested deeper than \d+/);
    assert.ok(body.pulled() <= 1, `read ${body.pulled()} of ${chunks.length} chunks before refusing`);
    assert.equal((await store.lookup(token))?.used, 0);
  });
});

Deno.test("predict: a JSON body with more elements than a full batch can hold is refused while it arrives", async () => {
  await withStore(async (store) => {
    const handler = handlerFor(store);
    const { token } = await store.create({ name: "wide", tier: "soft", budget: 100 });
    // ~500K numbers; a full batch of 8 4×4×1 images has 128.
    const chunks = chunked('{"images":[' + "0,".repeat(500_000) + "0]}", 1 << 16);
    const body = countingBody(chunks);
    const res = await handler(post(token, body.stream));
    const json = await res.json();
    assert.equal(res.status, 413, JSON.stringify(json));
    assert.equal(json.error.code, "json_too_many_elements");
    assert.ok(body.pulled() <= 1, `read ${body.pulled()} of ${chunks.length} chunks before refusing`);
    // A full batch passes the same guard.
    const full = await handler(post(token, JSON.stringify({ images: Array.from({ length: MAX_BATCH }, image) })));
    assert.equal(full.status, 200, await full.clone().text());
    await full.body?.cancel();
  });
});

Deno.test("predict: a client that disconnects mid-body is logged as an abort, without its query string", async () => {
  await withStore(async (store) => {
    const handler = handlerFor(store);
    const { token } = await store.create({ name: "gone", tier: "soft", budget: 100 });
    const ac = new AbortController();
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} }, handler);
    const port = server.addr.port;
    const logs = await captureLogs(async (lines) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const head = `POST /v1/predict?api_key=${token} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Authorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n`;
      await conn.write(new TextEncoder().encode(head + '{"images": [[[[0.5],'));
      await new Promise((r) => setTimeout(r, 100));
      conn.close();
      // The handler notices when its next read of the body fails.
      for (let i = 0; i < 40 && lines.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    });
    ac.abort();
    await server.finished;
    const text = logs.join("\n");
    assert.match(text, /client aborted POST \/v1\/predict/, text);
    assert.doesNotMatch(text, /api_key|meco_/, "no query string and no token in the log");
    assert.doesNotMatch(text, /internal error|\n\s+at /, "no 500 and no stack trace for a client abort");
    assert.equal((await store.lookup(token))?.used, 0);
  });
});

Deno.test("internal errors are logged with the path only, never the query string", async () => {
  await withStore(async (store) => {
    const handler = handlerFor(store, true);
    const { token } = await store.create({ name: "q", tier: "soft", budget: 100 });
    let res: Response | undefined;
    const logs = await captureLogs(async () => {
      res = await handler(post(token, JSON.stringify({ images: [image()] }), `/v1/predict?api_key=${token}&x=1`));
    });
    assert.equal(res?.status, 500);
    await res?.body?.cancel();
    const text = logs.join("\n");
    assert.match(text, /internal error on POST \/v1\/predict/);
    assert.doesNotMatch(text, /api_key|meco_|x=1/);
    assert.equal((await store.lookup(token))?.used, 0, "the failed request is refunded");
  });
});

Deno.test("json guard: brackets inside strings and escapes do not count, across chunk boundaries", () => {
  const text = '{"a": "[[[[{{{{\\"[[[", "b\\\\": [1, 2, [3]], "c": "\\u005b"}';
  assert.deepEqual(JSON.parse(text)["b\\"], [1, 2, [3]]); // valid JSON, key `b\`
  const bytes = new TextEncoder().encode(text);
  // Every split point: the result never depends on where the chunks break.
  for (let cut = 0; cut <= bytes.length; cut++) {
    const g = new JsonGuard({ maxDepth: 3, maxElements: 100 });
    g.feed(bytes.subarray(0, cut));
    g.feed(bytes.subarray(cut));
    assert.equal(g.depth, 0, `cut at ${cut}`);
    assert.equal(g.elements, 3 + 2 + 2, `cut at ${cut}: 3 openers, 4 commas`);
  }
  const deep = new JsonGuard({ maxDepth: 3, maxElements: 100 });
  assert.throws(() => deep.feed(new TextEncoder().encode("[[[[")), (e: Error) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, "json_too_deep");
    return true;
  });
  const wide = new JsonGuard({ maxDepth: 3, maxElements: 4 });
  wide.feed(new TextEncoder().encode("[1,2,3,"));
  assert.throws(() => wide.feed(new TextEncoder().encode("4,5]")), /more than 4 JSON elements/);
  // A full batch of nested images sits within the limits computed for it.
  const lim = predictLimits([28, 28, 1], 256);
  const one = Array.from({ length: 28 }, () => Array.from({ length: 28 }, () => [0.5]));
  const full = new JsonGuard(lim);
  full.feed(new TextEncoder().encode(JSON.stringify({ images: Array.from({ length: 256 }, () => one) })));
  assert.ok(full.elements <= lim.maxElements && full.elements > lim.maxElements - 100);
});
