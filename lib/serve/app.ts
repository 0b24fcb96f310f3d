/**
 * The HTTP API as a request handler (no sockets here; `main.ts` serves it):
 *
 * - `POST /v1/predict` — a batch of images in [0, 1] (see `decode.ts`) →
 *   probabilities (`soft` keys) or top-1 labels (`hard` keys), behind the
 *   configured defense; every image counts against the key's budget;
 * - `GET /v1/usage` — the caller's key, usage and budget;
 * - `GET /healthz` — liveness and what is served.
 *
 * Order of checks: route → key (unknown, revoked, or no budget left: refused
 * before any of the body is read) → content type → body size, JSON depth and
 * element count (checked on each chunk while it arrives) → JSON → images →
 * budget (accounted durably) → inference. A refused request counts nothing.
 *
 * Logs name the method and path only, never the query string (a client may
 * put a key there). A client that disconnects while sending its body is
 * logged as a client abort, in one line.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Defense } from "../defenses/defense.ts";
import { ApiError } from "./api_error.ts";
import { decodeImages } from "./decode.ts";
import { JsonGuard, type JsonLimits, predictLimits } from "./json_guard.ts";
import type { KeyInfo, KeyStore } from "./store.ts";

/** What the handler serves. */
export interface AppOptions {
  /** The defended victim. */
  defense: Defense;
  /** Label of the defense (as configured). */
  defenseLabel: string;
  /** Shape [h, w, c] of one image. */
  imageShape: readonly [number, number, number];
  /** Number of classes. */
  numClasses: number;
  /** Key and usage store. */
  store: KeyStore;
  /** Largest accepted body, in bytes. */
  maxBodyBytes: number;
  /** Most images per request. */
  maxBatch: number;
  /** Shown by /healthz: the bundle served. */
  model: string;
}

function usageOf(key: KeyInfo): { used: number; budget: number; remaining: number } {
  return { used: key.used, budget: key.budget, remaining: key.budget - key.used };
}

function bearer(req: Request): string {
  const h = req.headers.get("authorization");
  if (h === null) {
    throw new ApiError(401, "missing_key", "missing Authorization header; send `Authorization: Bearer <api key>`");
  }
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (m === null) {
    throw new ApiError(401, "missing_key", "Authorization header must be `Bearer <api key>`");
  }
  return m[1];
}

async function authenticate(store: KeyStore, token: string): Promise<KeyInfo> {
  const key = await store.lookup(token);
  if (key === undefined) throw new ApiError(401, "unknown_key", "unknown API key");
  if (key.revoked !== null) throw new ApiError(401, "revoked_key", `API key ${key.id} was revoked at ${key.revoked}`);
  return key;
}

/** The client went away (closed the connection) while its request body was being read. */
class ClientAbort extends Error {
  constructor(cause: unknown) {
    super(`the request body could not be read (${cause instanceof Error ? cause.name : typeof cause})`);
    this.name = "ClientAbort";
  }
}

async function readBody(req: Request, max: number, limits: JsonLimits): Promise<Uint8Array> {
  const tooLarge = (found: string) =>
    new ApiError(413, "body_too_large", `request body is ${found}; at most ${max} bytes are accepted`, {
      max_body_bytes: max,
    });
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > max) throw tooLarge(`${declared} bytes (Content-Length)`);
  if (req.body === null) return new Uint8Array(0);
  const guard = new JsonGuard(limits);
  const parts: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  try {
    while (true) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw new ClientAbort(e);
      }
      if (chunk.done) break;
      const value = chunk.value;
      size += value.byteLength;
      if (size > max) throw tooLarge(`over ${max} bytes`);
      guard.feed(value);
      parts.push(value);
    }
  } catch (e) {
    await reader.cancel().catch(() => {});
    throw e;
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

function budgetError(key: KeyInfo, n?: number): ApiError {
  const u = usageOf(key);
  const asked = n === undefined ? "" : `, this request has ${n}`;
  return new ApiError(
    429,
    "budget_exceeded",
    `query budget exceeded: ${u.used} of ${u.budget} images used${asked} (${u.remaining} remaining)`,
    u,
  );
}

/**
 * Builds the request handler.
 *
 * @example
 * ```ts ignore
 * const handler = createHandler({ defense, defenseLabel: "meco", imageShape: [28, 28, 1], numClasses: 10, store,
 *   maxBodyBytes: 8 << 20, maxBatch: 256, model: "models/mnist" });
 * Deno.serve({ port: 8080 }, handler);
 * ```
 */
export function createHandler(opts: AppOptions): (req: Request) => Promise<Response> {
  const [h, w, c] = opts.imageShape;
  const limits = predictLimits(opts.imageShape, opts.maxBatch);

  async function predict(req: Request): Promise<Response> {
    const token = bearer(req);
    const key = await authenticate(opts.store, token);
    // Every request asks for at least one image: a key with nothing left is refused before its body is read.
    if (key.used >= key.budget) throw budgetError(key);
    const type = req.headers.get("content-type");
    if (type === null || !/^application\/json\s*(;|$)/i.test(type)) {
      throw new ApiError(
        415,
        "unsupported_media_type",
        `Content-Type must be application/json, found ${type === null ? "none" : JSON.stringify(type)}`,
      );
    }
    const bytes = await readBody(req, opts.maxBodyBytes, limits);
    const t0 = performance.now();
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (e) {
      throw new ApiError(
        400,
        "malformed_json",
        `request body is not valid JSON: ${e instanceof Error ? e.message : e}`,
      );
    }
    const batch = decodeImages(body, { imageShape: opts.imageShape, maxBatch: opts.maxBatch });
    const t1 = performance.now();
    const charged = await opts.store.charge(token, batch.n);
    const t2 = performance.now();
    if (!charged.ok) {
      if (charged.reason === "unknown") throw new ApiError(401, "unknown_key", "unknown API key");
      if (charged.reason === "revoked") {
        throw new ApiError(401, "revoked_key", `API key ${charged.key.id} was revoked at ${charged.key.revoked}`);
      }
      throw budgetError(charged.key, batch.n);
    }
    // The images are accounted (durably) from here on; a failure to answer gives them back.
    let answer: number[][] | number[];
    let t3 = 0;
    try {
      const out = tf.tidy(() => {
        const x = tf.sub(tf.mul(tf.tensor4d(batch.data, [batch.n, h, w, c]), 2), 1) as tf.Tensor4D;
        const probs = opts.defense.predict(x);
        return key.tier === "hard" ? tf.argMax(probs, 1) : probs;
      });
      // Synchronous read: the model ran synchronously too, and no other request interleaves with the timing.
      answer = out.arraySync() as number[][] | number[];
      out.dispose();
      t3 = performance.now();
    } catch (e) {
      await opts.store.refund(token, batch.n);
      throw e;
    }
    const result = key.tier === "hard" ? { labels: answer } : { probabilities: answer };
    // Server-Timing (W3C): where this request's time went on the server, in ms.
    const timing = `decode;dur=${(t1 - t0).toFixed(2)}, account;dur=${(t2 - t1).toFixed(2)}, ` +
      `infer;dur=${(t3 - t2).toFixed(2)}`;
    return Response.json({
      defense: opts.defenseLabel,
      tier: key.tier,
      n: batch.n,
      ...result,
      usage: usageOf(charged.key),
    }, { headers: { "server-timing": timing } });
  }

  async function usage(req: Request): Promise<Response> {
    const key = await authenticate(opts.store, bearer(req));
    return Response.json({ key: { id: key.id, name: key.name, tier: key.tier }, ...usageOf(key) });
  }

  const routes: Record<string, Record<string, (req: Request) => Promise<Response>>> = {
    "/v1/predict": { POST: predict },
    "/v1/usage": { GET: usage },
    "/healthz": {
      GET: () =>
        Promise.resolve(Response.json({
          status: "ok",
          model: opts.model,
          defense: opts.defenseLabel,
          image_shape: [h, w, c],
          num_classes: opts.numClasses,
          input_range: [0, 1],
        })),
    },
  };

  return async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    try {
      const route = routes[path];
      if (route === undefined) throw new ApiError(404, "not_found", `no route ${path}`);
      const handler = route[req.method];
      if (handler === undefined) {
        const allow = Object.keys(route).join(", ");
        throw new ApiError(405, "method_not_allowed", `${req.method} ${path}: use ${allow}`, { allow });
      }
      return await handler(req);
    } catch (e) {
      if (e instanceof ApiError) {
        return e.toResponse(e.status === 405 ? { allow: String(e.extra.allow) } : {});
      }
      if (e instanceof ClientAbort || req.signal.aborted) {
        console.error(`client aborted ${req.method} ${path}: ${e instanceof Error ? e.message : "gone"}`);
        return new ApiError(400, "client_aborted", "the client closed the connection; the request was not counted")
          .toResponse();
      }
      console.error(`internal error on ${req.method} ${path}:`, e);
      return new ApiError(500, "internal", "internal server error; the request was not counted").toResponse();
    }
  };
}
