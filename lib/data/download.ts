/**
 * Downloading a file atomically with MD5 verification: the body is streamed
 * into a temporary file beside the destination, hashed on the way, checked,
 * and only then renamed into place. On any failure the temporary file is
 * removed, so nothing half-written is ever left behind.
 *
 * @module
 */

import { basename, dirname } from "node:path";
import { DataError } from "./data_error.ts";
import { createMd5 } from "./md5.ts";

/** Options for {@linkcode downloadVerified}. */
export interface DownloadOptions {
  /** Expected MD5 (hex) of the whole body; if absent the body is not checked. */
  md5?: string;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /** Called as bytes arrive, with the total when the server sent one. */
  onProgress?: (received: number, total: number | undefined) => void;
  /** Fail with `download_failed` when no response (headers) arrives within this many ms (default 30 000). */
  responseTimeoutMs?: number;
}

async function writeAll(file: Deno.FsFile, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.length) off += await file.write(chunk.subarray(off));
}

/**
 * Downloads `url` to `dest` (creating its directory), verifying the MD5
 * before the file appears at `dest`.
 *
 * Faults, naming the URL: `download_failed` (network error or non-2xx
 * status), `truncated` (fewer bytes than `Content-Length`),
 * `checksum_mismatch` (MD5 differs from `opts.md5`).
 *
 * @example
 * ```ts ignore
 * import { downloadVerified } from "./download.ts";
 * await downloadVerified("http://127.0.0.1:8000/a.tar.gz", "/tmp/a.tar.gz", {
 *   md5: "c32a1d4ab5d03f1284b67883e8d87530",
 * });
 * ```
 */
export async function downloadVerified(
  url: string,
  dest: string,
  opts: DownloadOptions = {},
): Promise<void> {
  const fetchFn = opts.fetch ?? fetch;
  const dir = dirname(dest);
  await Deno.mkdir(dir, { recursive: true });
  let res: Response;
  // A blackholed network must not hang a run: the response headers must arrive in time (the body may take longer).
  const waitMs = opts.responseTimeoutMs ?? 30_000;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`no response within ${waitMs / 1000} s`)), waitMs);
  try {
    res = await fetchFn(url, { signal: abort.signal });
  } catch (e) {
    throw new DataError(url, "download_failed", `request failed: ${abort.signal.aborted ? abort.signal.reason : e}`, {
      cause: e,
    });
  } finally {
    clearTimeout(timer);
  }
  if (!res.ok || res.body === null) {
    await res.body?.cancel();
    throw new DataError(url, "download_failed", "server refused", {
      expected: "HTTP 2xx with a body",
      found: `HTTP ${res.status} ${res.statusText}`.trim(),
    });
  }
  const lengthHeader = res.headers.get("content-length");
  const total = lengthHeader === null ? undefined : Number(lengthHeader);
  const tmp = await Deno.makeTempFile({
    dir,
    prefix: `.${basename(dest)}.`,
    suffix: ".part",
  });
  let renamed = false;
  try {
    const hasher = createMd5();
    let received = 0;
    const file = await Deno.open(tmp, { write: true, truncate: true });
    try {
      for await (const chunk of res.body) {
        hasher.update(chunk);
        await writeAll(file, chunk);
        received += chunk.length;
        opts.onProgress?.(received, total);
      }
      await file.sync();
    } catch (e) {
      if (e instanceof DataError) throw e;
      throw new DataError(url, "download_failed", `transfer broke: ${e}`, {
        found: `${received} bytes received`,
        cause: e,
      });
    } finally {
      file.close();
    }
    if (total !== undefined && Number.isFinite(total) && received !== total) {
      throw new DataError(url, "truncated", "body shorter than announced", {
        expected: `${total} bytes`,
        found: `${received} bytes`,
      });
    }
    const found = hasher.hex();
    if (opts.md5 !== undefined && found !== opts.md5.toLowerCase()) {
      throw new DataError(url, "checksum_mismatch", "downloaded MD5 differs", {
        expected: opts.md5.toLowerCase(),
        found,
      });
    }
    await Deno.rename(tmp, dest);
    renamed = true;
  } finally {
    if (!renamed) await Deno.remove(tmp).catch(() => {});
  }
}
