/**
 * The HTTP server end to end: a small bundle trained here (smoke profile, its
 * own cache), keys made with the CLI, the real server started as a child
 * process on a loopback port. Covers the API, every bad input of issue 9,
 * exact budgets under 64 concurrent clients on two server processes sharing
 * one store, and a SIGKILL mid-load.
 */
import assert from "node:assert/strict";
import { loadDataset } from "../../lib/data/mod.ts";
import { repoPath } from "../../lib/experiments/paths.ts";
import { drainBudget, getUsage, type ImagePool, postPredict, predictBody } from "../../lib/serve/client.ts";
import { encodeBase64 } from "../../lib/serve/decode.ts";
import { spawnServer } from "../../lib/serve/spawn.ts";
import { KeyStore } from "../../lib/serve/store.ts";

const MAX_BODY = 1_000_000;
const MAX_BATCH = 32;

async function cli(script: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", repoPath(script), ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${script} ${args.join(" ")} failed:\n${text}${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

async function writeConfig(dir: string, name: string, bundle: string, store: string, defense: string): Promise<string> {
  const path = `${dir}/${name}.yaml`;
  await Deno.writeTextFile(
    path,
    [
      `bundle: ${bundle}`,
      `defense: { type: ${defense} }`,
      `store: ${store}`,
      "host: 127.0.0.1",
      "port: 0",
      "backend: wasm",
      "limits:",
      `  max_body_bytes: ${MAX_BODY}`,
      `  max_batch: ${MAX_BATCH}`,
    ].join("\n") + "\n",
  );
  return path;
}

async function send(
  url: string,
  init: { token?: string; auth?: string; type?: string | null; body?: BodyInit; method?: string; path?: string },
): Promise<{ status: number; code?: string; message?: string; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (init.auth !== undefined) headers.authorization = init.auth;
  else if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  if (init.type !== null) headers["content-type"] = init.type ?? "application/json";
  const res = await fetch(`${url}${init.path ?? "/v1/predict"}`, {
    method: init.method ?? "POST",
    headers,
    body: init.body,
  });
  const json = await res.json();
  const err = json.error as { code?: string; message?: string } | undefined;
  return { status: res.status, code: err?.code, message: err?.message, json };
}

const zeroImage = () => Array.from({ length: 28 }, () => Array.from({ length: 28 }, () => [0]));

Deno.test("serve: API, bad input, exact budgets under concurrency, SIGKILL mid-load", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "meco-serve-" });
  const bundle = `${dir}/bundle`, store = `${dir}/keys.db`;
  const servers: { stop: (s?: Deno.Signal) => Promise<unknown> }[] = [];
  try {
    // A small MeCo-defended LeNet-5, trained now on an MNIST subset (smoke profile) into a private cache.
    const exported = await cli(
      "lib/serve/export_cli.ts",
      ["configs/mnist_dfme.yaml", "--profile", "smoke", "--out", bundle],
      { MECO_CACHE_DIR: `${dir}/cache`, MECO_BACKEND: "wasm" },
    );
    assert.match(exported, /wrote bundle .*MeCo acc/);
    const meta = JSON.parse(await Deno.readTextFile(`${bundle}/bundle.json`));
    assert.deepEqual(meta.image_shape, [28, 28, 1]);
    assert.equal(meta.source.profile, "smoke");

    const test = await loadDataset("mnist", "test");
    const pool: ImagePool = { data: test.images.subarray(0, 64 * 784), n: 64, shape: [28, 28, 1] };

    const mecoCfg = await writeConfig(dir, "meco", bundle, store, "meco");
    const noneCfg = await writeConfig(dir, "none", bundle, store, "none");
    const keyOf = async (args: string[]) =>
      JSON.parse(await cli("lib/serve/keys_cli.ts", ["create", "--config", mecoCfg, "--json", ...args]))
        .token as string;
    // The store does not exist yet: the first key creates it, and only because --create says so.
    const soft = await keyOf(["--budget", "1000", "--tier", "soft", "--name", "soft", "--create"]);
    const hard = await keyOf(["--budget", "1000", "--tier", "hard", "--name", "hard"]);
    const gone = await keyOf(["--budget", "1000", "--name", "gone"]);
    assert.match(await cli("lib/serve/keys_cli.ts", ["revoke", "--config", mecoCfg, "gone"]), /revoked k_/);
    const listed = JSON.parse(await cli("lib/serve/keys_cli.ts", ["list", "--store", store, "--json"]));
    assert.equal(listed.length, 3);
    const dbText = new TextDecoder("latin1").decode(await Deno.readFile(store));
    for (const tok of [soft, hard, gone]) assert.ok(!dbText.includes(tok), "tokens are stored hashed, never in clear");

    const a = await spawnServer(mecoCfg);
    servers.push(a);

    await t.step("healthz, soft and hard answers, both encodings, usage", async () => {
      const health = await (await fetch(`${a.url}/healthz`)).json();
      assert.equal(health.status, "ok");
      assert.equal(health.defense, "meco");
      assert.deepEqual(health.image_shape, [28, 28, 1]);

      const r = await postPredict(a.url, soft, predictBody(pool, 0, 3, "json"));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const probs = r.body.probabilities as number[][];
      assert.equal(probs.length, 3);
      for (const p of probs) {
        assert.equal(p.length, 10);
        assert.ok(Math.abs(p.reduce((s, v) => s + v, 0) - 1) < 1e-4);
      }
      assert.deepEqual(r.body.usage, { used: 3, budget: 1000, remaining: 997 });
      assert.ok(r.timing.infer >= 0 && r.timing.account >= 0 && r.timing.decode >= 0, "Server-Timing header");
      // MeCo draws a fresh ε per request: the same images twice give different probabilities.
      const again = await postPredict(a.url, soft, predictBody(pool, 0, 3, "base64"));
      assert.equal(again.status, 200);
      assert.notDeepEqual(again.body.probabilities, probs);

      const h = await postPredict(a.url, hard, predictBody(pool, 0, 5, "base64"));
      assert.equal(h.status, 200);
      const labels = h.body.labels as number[];
      assert.equal(labels.length, 5);
      for (const l of labels) assert.ok(Number.isInteger(l) && l >= 0 && l < 10);
      assert.equal(h.body.probabilities, undefined, "a hard-label key never sees probabilities");

      assert.deepEqual(await getUsage(a.url, soft), {
        key: { id: listed[0].id, name: "soft", tier: "soft" },
        used: 6,
        budget: 1000,
        remaining: 994,
      });
      assert.equal((await getUsage(a.url, hard)).used, 5);
    });

    await t.step(
      "every bad input is a 4xx naming the fault, counts nothing, and the server keeps serving",
      async () => {
        const before = (await getUsage(a.url, soft)).used;
        const one = JSON.stringify({ images: [zeroImage()] });
        const b64 = (vals: number[], shape: number[]) =>
          JSON.stringify({ images_b64: encodeBase64(Float32Array.from(vals)), shape });
        const full = (v: number) => {
          const x = new Array(784).fill(0.5);
          x[100] = v;
          return x;
        };
        const rows27 = JSON.stringify({ images: [zeroImage().slice(1)] });
        const threeCh = zeroImage();
        threeCh[4][5] = [0, 0, 0];
        const neg = zeroImage();
        neg[2][3] = [-0.5];
        const big = zeroImage();
        big[0][0] = [255];
        const cases: { name: string; req: Parameters<typeof send>[1]; status: number; code: string; says: RegExp }[] = [
          { name: "missing key", req: { body: one }, status: 401, code: "missing_key", says: /Authorization/ },
          {
            name: "not a bearer",
            req: { auth: "Token abc", body: one },
            status: 401,
            code: "missing_key",
            says: /Bearer/,
          },
          {
            name: "unknown key",
            req: { token: "meco_nope", body: one },
            status: 401,
            code: "unknown_key",
            says: /unknown/,
          },
          { name: "revoked key", req: { token: gone, body: one }, status: 401, code: "revoked_key", says: /revoked/ },
          {
            name: "wrong content type",
            req: { token: soft, type: "text/plain", body: one },
            status: 415,
            code: "unsupported_media_type",
            says: /text\/plain/,
          },
          {
            name: "no content type",
            req: { token: soft, type: null, body: new TextEncoder().encode(one) },
            status: 415,
            code: "unsupported_media_type",
            says: /none/,
          },
          {
            name: "oversize body",
            req: { token: soft, body: " ".repeat(MAX_BODY + 1) },
            status: 413,
            code: "body_too_large",
            says: /1000000 bytes/,
          },
          {
            name: "oversize streamed body (no Content-Length)",
            req: {
              token: soft,
              body: new ReadableStream({
                start(c) {
                  for (let i = 0; i < 20; i++) c.enqueue(new Uint8Array(100_000).fill(32));
                  c.close();
                },
              }),
            },
            status: 413,
            code: "body_too_large",
            says: /at most/,
          },
          {
            name: "oversize batch",
            req: { token: soft, body: b64(new Array(33 * 784).fill(0), [33, 28, 28, 1]) },
            status: 413,
            code: "batch_too_large",
            says: /33 images.*at most 32/,
          },
          {
            name: "malformed JSON",
            req: { token: soft, body: '{"images": [' },
            status: 400,
            code: "malformed_json",
            says: /JSON/,
          },
          {
            name: "malformed base64",
            req: { token: soft, body: JSON.stringify({ images_b64: "!!!!", shape: [1, 28, 28, 1] }) },
            status: 400,
            code: "malformed_base64",
            says: /base64/,
          },
          {
            name: "base64 of the wrong length",
            req: { token: soft, body: b64(new Array(700).fill(0), [1, 28, 28, 1]) },
            status: 422,
            code: "wrong_shape",
            says: /3136 bytes.*2800/,
          },
          {
            name: "wrong shape (27 rows)",
            req: { token: soft, body: rows27 },
            status: 422,
            code: "wrong_shape",
            says: /images\[0\]: expected 28 rows/,
          },
          {
            name: "wrong shape (base64 rank 3)",
            req: { token: soft, body: b64(new Array(784).fill(0), [1, 28, 28]) },
            status: 422,
            code: "wrong_shape",
            says: /expected \[n, 28, 28, 1\]/,
          },
          {
            name: "wrong channel count",
            req: { token: soft, body: JSON.stringify({ images: [threeCh] }) },
            status: 422,
            code: "wrong_channels",
            says: /images\[0\]\[4\]\[5\]: expected 1 channel\(s\), found 3/,
          },
          {
            name: "wrong channel count (base64)",
            req: { token: soft, body: b64(new Array(3 * 784).fill(0), [1, 28, 28, 3]) },
            status: 422,
            code: "wrong_channels",
            says: /found 3/,
          },
          {
            name: "NaN",
            req: { token: soft, body: b64(full(NaN), [1, 28, 28, 1]) },
            status: 422,
            code: "non_finite",
            says: /images_b64\[0\]\[3\]\[16\]\[0\] is NaN/,
          },
          {
            name: "Infinity (base64)",
            req: { token: soft, body: b64(full(-Infinity), [1, 28, 28, 1]) },
            status: 422,
            code: "non_finite",
            says: /-Infinity/,
          },
          {
            name: "Infinity (JSON 1e999)",
            req: { token: soft, body: one.replace("[0]", "[1e999]") },
            status: 422,
            code: "non_finite",
            says: /images\[0\]\[0\]\[0\]\[0\] is Infinity/,
          },
          {
            name: "value below 0",
            req: { token: soft, body: JSON.stringify({ images: [neg] }) },
            status: 422,
            code: "out_of_range",
            says: /images\[0\]\[2\]\[3\]\[0\] is -0.5/,
          },
          {
            name: "value above 1 (0-255 pixels)",
            req: { token: soft, body: JSON.stringify({ images: [big] }) },
            status: 422,
            code: "out_of_range",
            says: /is 255/,
          },
          {
            name: "empty batch",
            req: { token: soft, body: '{"images": []}' },
            status: 422,
            code: "empty_batch",
            says: /empty/,
          },
          {
            name: "empty batch (base64)",
            req: { token: soft, body: JSON.stringify({ images_b64: "", shape: [0, 28, 28, 1] }) },
            status: 422,
            code: "empty_batch",
            says: /empty/,
          },
          {
            name: "a string pixel",
            req: { token: soft, body: one.replace("[0]", '["0"]') },
            status: 400,
            code: "invalid_request",
            says: /expected a number/,
          },
          {
            name: "not an object",
            req: { token: soft, body: "[1, 2]" },
            status: 400,
            code: "invalid_request",
            says: /JSON object/,
          },
          {
            name: "no images",
            req: { token: soft, body: '{"x": 1}' },
            status: 400,
            code: "invalid_request",
            says: /unknown field.*"x"/,
          },
          {
            name: "unknown route",
            req: { token: soft, path: "/v1/nope", method: "GET" },
            status: 404,
            code: "not_found",
            says: /nope/,
          },
          {
            name: "wrong method",
            req: { token: soft, method: "GET" },
            status: 405,
            code: "method_not_allowed",
            says: /POST/,
          },
        ];
        for (const c of cases) {
          const r = await send(a.url, c.req);
          assert.equal(r.status, c.status, `${c.name}: ${JSON.stringify(r.json)}`);
          assert.equal(r.code, c.code, c.name);
          assert.match(r.message ?? "", c.says, c.name);
        }
        assert.equal((await getUsage(a.url, soft)).used, before, "refused requests count nothing");
        const ok = await postPredict(a.url, soft, predictBody(pool, 0, 2, "json"));
        assert.equal(ok.status, 200, "the server still serves after every bad request");
        assert.equal((await getUsage(a.url, soft)).used, before + 2);

        // A key about to run out: a batch larger than what remains is refused whole (429) and counts nothing.
        const s = KeyStore.open(store);
        const { token: small } = await s.create({ name: "small", tier: "soft", budget: 4 });
        s.close();
        assert.equal((await postPredict(a.url, small, predictBody(pool, 0, 3, "json"))).status, 200);
        const refused = await send(a.url, { token: small, body: predictBody(pool, 0, 2, "json") });
        assert.equal(refused.status, 429);
        assert.equal(refused.code, "budget_exceeded");
        assert.equal(refused.json.error && (refused.json.error as { remaining: number }).remaining, 1);
        assert.equal((await getUsage(a.url, small)).used, 3);
      },
    );

    await t.step("64 concurrent clients on two servers sharing one store: served == budget exactly", async () => {
      const b = await spawnServer(noneCfg);
      servers.push(b);
      const s = KeyStore.open(store);
      const budget = 300;
      const { token } = await s.create({ name: "drain", tier: "soft", budget });
      s.close();
      const [ra, rb] = await Promise.all([
        drainBudget({ url: a.url, token, pool, clients: 32, maxBatch: 8, encoding: "base64", seed: 1 }),
        drainBudget({ url: b.url, token, pool, clients: 32, maxBatch: 8, encoding: "json", seed: 2 }),
      ]);
      assert.equal(ra.failed + rb.failed, 0);
      assert.ok(ra.served > 0 && rb.served > 0, `both servers answered (${ra.served}, ${rb.served})`);
      assert.equal(ra.served + rb.served, budget, "every image of the budget served, none beyond");
      assert.ok(ra.refused + rb.refused > 0, "the budget was contended");
      const u = await getUsage(b.url, token);
      assert.deepEqual([u.used, u.budget, u.remaining], [budget, budget, 0]);
      await b.stop();
      servers.pop();
    });

    await t.step("SIGKILL mid-load: usage never under-counted, never past the budget", async () => {
      const s = KeyStore.open(store);
      const budget = 400;
      const { token } = await s.create({ name: "crash", tier: "soft", budget });
      s.close();
      let servedBefore = 0;
      const killAt = 100;
      const killed = Promise.withResolvers<void>();
      const load = drainBudget({
        url: a.url,
        token,
        pool,
        clients: 64,
        maxBatch: 8,
        encoding: "json",
        seed: 3,
        onServed: (n) => {
          servedBefore += n;
          if (servedBefore >= killAt) killed.resolve();
        },
      });
      await killed.promise;
      const status = await a.stop("SIGKILL");
      servers.splice(servers.indexOf(a), 1);
      assert.equal(status.signal, "SIGKILL");
      const during = await load;
      assert.ok(during.failed > 0, "requests were in flight when the server died");
      assert.equal(during.served, servedBefore);

      const c = await spawnServer(mecoCfg);
      servers.push(c);
      const afterCrash = await getUsage(c.url, token);
      assert.ok(afterCrash.used >= servedBefore, `usage ${afterCrash.used} under-counts ${servedBefore} served images`);
      assert.ok(afterCrash.used <= budget);
      const rest = await drainBudget({ url: c.url, token, pool, clients: 64, maxBatch: 8, encoding: "json", seed: 4 });
      assert.equal(rest.failed, 0);
      const final = await getUsage(c.url, token);
      assert.equal(final.used, budget, "the budget is used up exactly");
      assert.equal(rest.served, budget - afterCrash.used, "after the restart every remaining image is served");
      assert.ok(servedBefore + rest.served <= budget, "never served past the budget");
    });
  } finally {
    for (const s of servers) await s.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});
