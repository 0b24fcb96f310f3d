/**
 * Test helpers for `lib/data`: assertions on {@linkcode DataError}s and
 * generators of small fixture files (IDX, CIFAR records, tar, tar.gz).
 *
 * @module
 */

import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { DataError, type DataFault } from "../../lib/data/data_error.ts";

export { assert };

/** Awaits `run`, asserting it rejects with a DataError of `fault` whose file contains `file`. */
export async function assertDataError(
  run: () => Promise<unknown> | unknown,
  fault: DataFault,
  file?: string,
): Promise<DataError> {
  let caught: unknown;
  try {
    await run();
  } catch (e) {
    caught = e;
  }
  assert.ok(
    caught !== undefined,
    `expected DataError ${fault}, nothing thrown`,
  );
  assert.ok(caught instanceof DataError, `expected DataError, got ${caught}`);
  assert.equal(caught.fault, fault, caught.message);
  if (file !== undefined) {
    assert.ok(
      caught.file.includes(file),
      `error file ${caught.file} should name ${file}`,
    );
    assert.ok(caught.message.startsWith(caught.file), caught.message);
  }
  return caught;
}

/** Encodes an IDX file: magic, big-endian dims, then data (u8 only). */
export function idxBytes(dims: number[], data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out[2] = 0x08;
  out[3] = dims.length;
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(Array.from(data), 4 + 4 * dims.length);
  return out;
}

/** Deterministic pseudo-random bytes (a simple LCG, independent of lib/data/rng.ts). */
export function fakeBytes(n: number, seed: number, mod = 256): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s >>> 24) % mod;
  }
  return out;
}

/** gzip-compresses bytes. */
export function gzip(bytes: Uint8Array): Uint8Array {
  const z = gzipSync(bytes);
  return new Uint8Array(z.buffer, z.byteOffset, z.byteLength);
}

/** One CIFAR record's content. */
export interface CifarRecord {
  /** CIFAR-10 label, or CIFAR-100 fine label. */
  label: number;
  /** CIFAR-100 coarse label. */
  coarse?: number;
  /** 3072 bytes, channel-major (R plane, G plane, B plane). */
  pixels: Uint8Array;
}

/** Encodes CIFAR records (CIFAR-100 layout when `coarse` labels are present). */
export function cifarBytes(
  records: CifarRecord[],
  cifar100 = false,
): Uint8Array {
  const rec = (cifar100 ? 2 : 1) + 3072;
  const out = new Uint8Array(records.length * rec);
  records.forEach((r, i) => {
    const o = i * rec;
    if (cifar100) {
      out[o] = r.coarse ?? 0;
      out[o + 1] = r.label;
    } else {
      out[o] = r.label;
    }
    out.set(r.pixels, o + rec - 3072);
  });
  return out;
}

/** `n` CIFAR records with labels `label(i)` and pseudo-random pixels. */
export function cifarRecords(
  n: number,
  seed: number,
  label: (i: number) => number,
  coarse?: (i: number) => number,
): CifarRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    label: label(i),
    coarse: coarse?.(i),
    pixels: fakeBytes(3072, seed * 1000 + i),
  }));
}

function putString(h: Uint8Array, off: number, len: number, s: string): void {
  const b = new TextEncoder().encode(s);
  if (b.length > len) throw new Error(`tar field too long: ${s}`);
  h.set(b, off);
}

function putOctal(h: Uint8Array, off: number, len: number, v: number): void {
  putString(h, off, len, v.toString(8).padStart(len - 1, "0") + "\0");
}

function tarHeader(name: string, size: number, typeflag: string): Uint8Array {
  const h = new Uint8Array(512);
  putString(h, 0, 100, name);
  putOctal(h, 100, 8, 0o644);
  putOctal(h, 108, 8, 0);
  putOctal(h, 116, 8, 0);
  putOctal(h, 124, 12, size);
  putOctal(h, 136, 12, 1700000000);
  h[156] = typeflag.charCodeAt(0);
  putString(h, 257, 6, "ustar\0");
  putString(h, 263, 2, "00");
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  putString(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/** A tar member to write. */
export interface TarMember {
  /** Path in the archive; longer than 100 bytes is written with a GNU `L` record. */
  name: string;
  /** Content; omit for a directory. */
  data?: Uint8Array;
}

/** Writes a ustar archive (with GNU long-name records where needed). */
export function tarBytes(members: TarMember[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const pad = (n: number) => new Uint8Array((512 - (n % 512)) % 512);
  for (const m of members) {
    let name = m.name;
    if (new TextEncoder().encode(name).length > 100) {
      const long = new TextEncoder().encode(name + "\0");
      parts.push(
        tarHeader("././@LongLink", long.length, "L"),
        long,
        pad(long.length),
      );
      name = name.slice(0, 99);
    }
    if (m.data === undefined) {
      parts.push(tarHeader(name.endsWith("/") ? name : name + "/", 0, "5"));
    } else {
      parts.push(
        tarHeader(name, m.data.length, "0"),
        m.data,
        pad(m.data.length),
      );
    }
  }
  parts.push(new Uint8Array(1024));
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Lists every entry (recursively, relative paths) under `dir`, sorted. */
export async function listTree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const rel = prefix + e.name;
    out.push(e.isDirectory ? rel + "/" : rel);
    if (e.isDirectory) {
      out.push(...await listTree(`${dir}/${e.name}`, rel + "/"));
    }
  }
  return out.sort();
}

/** Serves `routes` (path → body) on 127.0.0.1 with a random port; counts hits. */
export function serveFixtures(
  routes: Record<string, Uint8Array | ((req: Request) => Response)>,
): {
  url: (path: string) => string;
  hits: Map<string, number>;
  close: () => Promise<void>;
} {
  const hits = new Map<string, number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => {
      const path = new URL(req.url).pathname;
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const r = routes[path];
      if (r === undefined) return new Response("not found", { status: 404 });
      if (typeof r === "function") return r(req);
      return new Response(r as Uint8Array<ArrayBuffer>);
    },
  );
  const port = (server.addr as Deno.NetAddr).port;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    hits,
    close: () => server.shutdown(),
  };
}
