import { join } from "node:path";
import { downloadVerified } from "../../lib/data/download.ts";
import { md5Hex } from "../../lib/data/md5.ts";
import { assert, assertDataError, fakeBytes, listTree, serveFixtures } from "./_helpers.ts";

const BODY = fakeBytes(300_000, 9);

/** A raw TCP server that announces the whole body, sends 1000 bytes, and hangs up. */
function cutShortServer(): { url: string; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      const buf = new Uint8Array(4096);
      await conn.read(buf);
      const head = `HTTP/1.1 200 OK\r\ncontent-length: ${BODY.length}\r\nconnection: close\r\n\r\n`;
      await conn.write(new TextEncoder().encode(head));
      await conn.write(BODY.subarray(0, 1000));
      conn.close();
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/cut`,
    close: () => listener.close(),
  };
}

Deno.test("downloadVerified: right checksum lands the file atomically; wrong ones leave nothing", async () => {
  const dir = await Deno.makeTempDir();
  const srv = serveFixtures({ "/a.bin": BODY });
  const cut = cutShortServer();
  try {
    const dest = join(dir, "sub", "a.bin");
    let progress = 0;
    await downloadVerified(srv.url("/a.bin"), dest, {
      md5: md5Hex(BODY).toUpperCase(),
      onProgress: (r) => (progress = r),
    });
    assert.deepEqual(await Deno.readFile(dest), BODY);
    assert.equal(progress, BODY.length);
    assert.deepEqual(await listTree(dir), ["sub/", "sub/a.bin"]);

    const dest2 = join(dir, "b.bin");
    const e = await assertDataError(
      () =>
        downloadVerified(srv.url("/a.bin"), dest2, {
          md5: "0123456789abcdef0123456789abcdef",
        }),
      "checksum_mismatch",
      srv.url("/a.bin"),
    );
    assert.equal(e.found, md5Hex(BODY));
    await assertDataError(
      () => downloadVerified(srv.url("/missing"), dest2),
      "download_failed",
      "/missing",
    );
    const broken = await assertDataError(
      () => downloadVerified(cut.url, dest2),
      "download_failed",
      "/cut",
    );
    assert.match(broken.message, /transfer broke/);
    // nothing half-written: no b.bin, no .part files
    assert.deepEqual(await listTree(dir), ["sub/", "sub/a.bin"]);
  } finally {
    await srv.close();
    cut.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadVerified: unreachable host is download_failed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const failing: typeof fetch = () => Promise.reject(new TypeError("no route"));
    await assertDataError(
      () =>
        downloadVerified("http://example.invalid/x", join(dir, "x"), {
          fetch: failing,
        }),
      "download_failed",
      "example.invalid",
    );
    assert.deepEqual(await listTree(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadVerified: a server that never answers is download_failed after the response timeout", async () => {
  const dir = await Deno.makeTempDir();
  // Accepts connections and never replies (a blackholed network seen from the client).
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of listener) held.push(c);
  })();
  try {
    const t0 = performance.now();
    const err = await assertDataError(
      () =>
        downloadVerified(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/x`, join(dir, "x"), {
          responseTimeoutMs: 300,
        }),
      "download_failed",
      "127.0.0.1",
    );
    assert.match(err.message, /no response within 0\.3 s/);
    assert.ok(performance.now() - t0 < 5000);
    assert.deepEqual(await listTree(dir), []);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    held.forEach((c) => c.close());
    await Deno.remove(dir, { recursive: true });
  }
});
