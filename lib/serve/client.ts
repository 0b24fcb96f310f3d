/**
 * A small HTTP client of the API and the two load patterns the load test and
 * the tests run: a fixed number of requests from concurrent clients
 * ({@linkcode runLoad}), and concurrent clients draining one key's budget
 * ({@linkcode drainBudget}).
 *
 * @module
 */
import { mulberry32 } from "../data/rng.ts";
import { encodeBase64 } from "./decode.ts";

/** How request bodies carry the images. */
export type Encoding = "json" | "base64";

/** A pool of images in [0, 1] to send: `n` images of `shape`, row-major. */
export interface ImagePool {
  /** The values. */
  data: Float32Array;
  /** Number of images. */
  n: number;
  /** Shape [h, w, c] of one image. */
  shape: readonly [number, number, number];
}

/** The body of a predict request for images `start … start+n−1` (mod the pool). */
export function predictBody(pool: ImagePool, start: number, n: number, encoding: Encoding): string {
  const [h, w, c] = pool.shape;
  const size = h * w * c;
  const data = new Float32Array(n * size);
  for (let i = 0; i < n; i++) {
    const j = (start + i) % pool.n;
    data.set(pool.data.subarray(j * size, (j + 1) * size), i * size);
  }
  if (encoding === "base64") return JSON.stringify({ images_b64: encodeBase64(data), shape: [n, h, w, c] });
  const images = [];
  for (let i = 0, o = 0; i < n; i++) {
    const img = [];
    for (let y = 0; y < h; y++) {
      const row = [];
      for (let x = 0; x < w; x++) {
        const px = [];
        for (let k = 0; k < c; k++) px.push(data[o++]);
        row.push(px);
      }
      img.push(row);
    }
    images.push(img);
  }
  return JSON.stringify({ images });
}

/** One answered request. */
export interface Answer {
  /** HTTP status. */
  status: number;
  /** The parsed JSON body. */
  body: Record<string, unknown>;
  /** Wall milliseconds from send to parsed answer. */
  ms: number;
  /** The server's `Server-Timing` entries (ms by name: decode, account, infer), when sent. */
  timing: Record<string, number>;
}

/** Parses a `Server-Timing` header (`name;dur=1.5, …`) into ms by name. */
export function parseServerTiming(h: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of (h ?? "").split(",")) {
    const m = /^\s*([\w-]+)\s*;\s*dur=([\d.]+)/.exec(part);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** POSTs a predict request. */
export async function postPredict(url: string, token: string, body: string): Promise<Answer> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/predict`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body,
  });
  const json = await res.json();
  return {
    status: res.status,
    body: json,
    ms: performance.now() - t0,
    timing: parseServerTiming(res.headers.get("server-timing")),
  };
}

/** A key's usage, as `GET /v1/usage` answers. */
export interface Usage {
  /** The key (never its token). */
  key: { id: string; name: string; tier: string };
  /** Images used. */
  used: number;
  /** Images allowed. */
  budget: number;
  /** budget − used. */
  remaining: number;
}

/** GETs the usage of `token`'s key. */
export async function getUsage(
  url: string,
  token: string,
): Promise<{ used: number; budget: number; remaining: number }> {
  const res = await fetch(`${url}/v1/usage`, { headers: { authorization: `Bearer ${token}` } });
  const json = await res.json();
  if (res.status !== 200) throw new Error(`GET /v1/usage: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** The q-quantile (0 ≤ q ≤ 1) of `xs` by linear interpolation; NaN when empty. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** What {@linkcode runLoad} measured. */
export interface LoadResult {
  /** Requests answered 200. */
  ok: number;
  /** Requests answered otherwise, by status. */
  failed: Record<string, number>;
  /** Images answered. */
  images: number;
  /** Wall seconds of the whole run. */
  seconds: number;
  /** Latency (ms) of every 200 answer. */
  latencies: number[];
  /** Server-side inference time (ms: defense + model, Server-Timing `infer`) of every 200 answer. */
  infer: number[];
}

/**
 * `clients` concurrent clients each send `requests` predict requests of
 * `batch` images, one after another; returns counts and latencies.
 */
export async function runLoad(opts: {
  url: string;
  token: string;
  pool: ImagePool;
  clients: number;
  requests: number;
  batch: number;
  encoding: Encoding;
}): Promise<LoadResult> {
  const bodies: string[] = [];
  const distinct = Math.min(opts.clients * opts.requests, 32);
  for (let i = 0; i < distinct; i++) bodies.push(predictBody(opts.pool, i * opts.batch, opts.batch, opts.encoding));
  const result: LoadResult = { ok: 0, failed: {}, images: 0, seconds: 0, latencies: [], infer: [] };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: opts.clients }, async (_, c) => {
    for (let r = 0; r < opts.requests; r++) {
      const a = await postPredict(opts.url, opts.token, bodies[(c * opts.requests + r) % bodies.length]);
      if (a.status === 200) {
        result.ok++;
        result.images += a.body.n as number;
        result.latencies.push(a.ms);
        if (a.timing.infer !== undefined) result.infer.push(a.timing.infer);
      } else result.failed[a.status] = (result.failed[a.status] ?? 0) + 1;
    }
  }));
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

/** What {@linkcode drainBudget} saw. */
export interface DrainResult {
  /** Images answered 200 (summed `n` of the answers received). */
  served: number;
  /** Requests refused with 429. */
  refused: number;
  /** Requests that failed otherwise (network errors, other statuses), e.g. because the server was killed. */
  failed: number;
}

/**
 * `clients` concurrent clients send batches of 1…`maxBatch` images on one
 * key until its budget is spent: a client refused with 429 retries with at
 * most the remaining images the refusal reports, and stops when none remain.
 * `stop` (polled between requests) ends the run early.
 */
export async function drainBudget(opts: {
  url: string;
  token: string;
  pool: ImagePool;
  clients: number;
  maxBatch: number;
  encoding: Encoding;
  seed?: number;
  stop?: () => boolean;
  onServed?: (n: number) => void;
}): Promise<DrainResult> {
  const out: DrainResult = { served: 0, refused: 0, failed: 0 };
  const rand = mulberry32(opts.seed ?? 1);
  await Promise.all(Array.from({ length: opts.clients }, async (_, c) => {
    let cap = opts.maxBatch;
    let i = c;
    while (cap > 0 && !(opts.stop?.() ?? false)) {
      const n = 1 + Math.floor(rand() * cap);
      let a: Answer;
      try {
        a = await postPredict(opts.url, opts.token, predictBody(opts.pool, i++, n, opts.encoding));
      } catch {
        out.failed++;
        return; // the server is gone
      }
      if (a.status === 200) {
        out.served += n;
        opts.onServed?.(n);
      } else if (a.status === 429) {
        out.refused++;
        const err = a.body.error as { remaining?: number };
        cap = Math.min(cap, err.remaining ?? 0, n - 1);
      } else {
        out.failed++;
        return;
      }
    }
  }));
  return out;
}
