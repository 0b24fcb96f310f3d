/**
 * Getting the CIFAR binary files onto this machine: from a local directory,
 * from the cache (`<data dir>/cifar-10-batches-bin`, `<data dir>/cifar-100-binary`),
 * from an archive already in the cache, or by downloading the archive from
 * its canonical URL (injectable), verifying its MD5, and extracting it
 * atomically (into a temporary folder that is renamed into place).
 *
 * @module
 */

import { join } from "node:path";
import { defaultDataDir } from "./cache_dir.ts";
import { cifarRecordCount, type CifarVariant } from "./cifar_format.ts";
import { DataError } from "./data_error.ts";
import type { Split } from "./dataset.ts";
import { downloadVerified } from "./download.ts";
import { gunzip } from "./gzip.ts";
import { assertMd5 } from "./md5.ts";
import { pathExists, readFileBytes } from "./read_bytes.ts";
import { readTar } from "./tar.ts";

/** Where a CIFAR variant comes from and how its files are laid out. */
export interface CifarSource {
  /** Human name, e.g. `"CIFAR-10"`. */
  title: string;
  /** Canonical archive URL. */
  url: string;
  /** MD5 of the archive. */
  md5: string;
  /** Archive file name in the cache. */
  archive: string;
  /** Folder inside the archive (and in the cache) holding the batch files. */
  folder: string;
  /** Batch files per split, in order. */
  files: { readonly [S in Split]: readonly string[] };
  /** Records per split. */
  counts: { readonly [S in Split]: number };
}

/** The canonical CIFAR-10 / CIFAR-100 binary distributions. */
export const CIFAR_SOURCES: { readonly [V in CifarVariant]: CifarSource } = {
  cifar10: {
    title: "CIFAR-10",
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    md5: "c32a1d4ab5d03f1284b67883e8d87530",
    archive: "cifar-10-binary.tar.gz",
    folder: "cifar-10-batches-bin",
    files: {
      train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`),
      test: ["test_batch.bin"],
    },
    counts: { train: 50000, test: 10000 },
  },
  cifar100: {
    title: "CIFAR-100",
    url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    md5: "03b5dce01913d631647c71ecec9e9cb8",
    archive: "cifar-100-binary.tar.gz",
    folder: "cifar-100-binary",
    files: { train: ["train.bin"], test: ["test.bin"] },
    counts: { train: 50000, test: 10000 },
  },
};

/** Options for {@linkcode locateCifar}. */
export interface CifarLocateOptions {
  /**
   * A directory holding the extracted batch files, either directly or in the
   * variant's folder (`cifar-10-batches-bin/`, `cifar-100-binary/`). When set,
   * nothing else is tried.
   */
  dir?: string;
  /** Cache directory (default {@linkcode defaultDataDir}). */
  dataDir?: string;
  /** Whether the archive may be downloaded when absent (default `true`). */
  download?: boolean;
  /** Archive URL (default: the canonical one). */
  url?: string;
  /** Expected archive MD5 (default: the canonical one). */
  md5?: string;
  /** The `fetch` to download with. */
  fetch?: typeof fetch;
  /** Called as download bytes arrive. */
  onProgress?: (received: number, total: number | undefined) => void;
}

function allFiles(src: CifarSource): string[] {
  return [...src.files.train, ...src.files.test];
}

async function firstMissing(
  dir: string,
  files: readonly string[],
): Promise<string | undefined> {
  for (const f of files) {
    if (!(await pathExists(join(dir, f)))) return join(dir, f);
  }
  return undefined;
}

/**
 * Extracts the batch files of `variant` from a `.tar.gz` archive into
 * `<dataDir>/<folder>`. The files are written into a temporary folder in
 * `dataDir` that is renamed into place only once all of them are written and
 * their sizes check out; on failure it is removed.
 *
 * Faults, naming the archive: `bad_gzip` / `truncated` / `bad_archive`
 * (corrupt archive, missing member), `record_size` (member of wrong size).
 */
export async function extractCifarArchive(
  archive: string,
  variant: CifarVariant,
  dataDir: string,
): Promise<string> {
  const src = CIFAR_SOURCES[variant];
  const finalDir = join(dataDir, src.folder);
  const entries = readTar(
    gunzip(await readFileBytes(archive), archive),
    archive,
  );
  const members = new Map<string, Uint8Array>();
  for (const e of entries) {
    if (e.kind !== "file") continue;
    const parts = e.name.split("/").filter((p) => p !== "");
    if (parts.length === 2 && parts[0] === src.folder && parts[1] !== "..") {
      members.set(parts[1], e.data);
    }
  }
  for (const f of allFiles(src)) {
    const data = members.get(f);
    if (data === undefined) {
      throw new DataError(
        archive,
        "bad_archive",
        `lacks member ${src.folder}/${f}`,
      );
    }
    cifarRecordCount(data.length, variant, `${archive}:${src.folder}/${f}`);
  }
  await Deno.mkdir(dataDir, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: dataDir, prefix: ".extract-" });
  try {
    const staged = join(tmp, src.folder);
    await Deno.mkdir(staged);
    for (const [name, data] of members) {
      await Deno.writeFile(join(staged, name), data);
    }
    try {
      await Deno.rename(staged, finalDir);
    } catch (e) {
      // Another process may have finished the same extraction first.
      if ((await firstMissing(finalDir, allFiles(src))) !== undefined) throw e;
    }
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return finalDir;
}

function howToGet(src: CifarSource, dataDir: string): string {
  return `put the extracted ${src.folder}/ (${allFiles(src).join(", ")}) in ` +
    `${dataDir}, or put ${src.archive} (from ${src.url}, md5 ${src.md5}) at ` +
    `${join(dataDir, src.archive)}; set MECO_DATA_DIR or the dataDir option ` +
    `to use another directory, or pass dir to read from a local copy; or allow ` +
    `downloading (download: true) to fetch it automatically`;
}

/**
 * The directory that holds the batch files of `variant` (with `dir`: those
 * of `split`, or of both splits if `split` is absent), obtaining them if
 * needed (see the module comment for the order tried). When the data is
 * absent and `download` is `false`, throws a `not_available`
 * {@linkcode DataError} saying where to put the files and how to download.
 *
 * @example
 * ```ts ignore
 * import { locateCifar } from "./cifar_source.ts";
 * const dir = await locateCifar("cifar10", { dataDir: "/data/meco" });
 * ```
 */
export async function locateCifar(
  variant: CifarVariant,
  opts: CifarLocateOptions = {},
  split?: Split,
): Promise<string> {
  const src = CIFAR_SOURCES[variant];
  if (opts.dir !== undefined) {
    const needed = split === undefined ? allFiles(src) : src.files[split];
    for (const d of [opts.dir, join(opts.dir, src.folder)]) {
      if ((await firstMissing(d, needed)) === undefined) return d;
    }
    const missing = await firstMissing(join(opts.dir, src.folder), needed);
    throw new DataError(
      missing ?? opts.dir,
      "missing_file",
      `${src.title} batch files not found in ${opts.dir}; ${howToGet(src, opts.dir)}`,
    );
  }
  const dataDir = opts.dataDir ?? defaultDataDir();
  const finalDir = join(dataDir, src.folder);
  if (await pathExists(finalDir)) {
    const missing = await firstMissing(finalDir, allFiles(src));
    if (missing === undefined) return finalDir;
    throw new DataError(
      missing,
      "missing_file",
      `${finalDir} is incomplete; delete it to re-extract or re-download`,
    );
  }
  const archive = join(dataDir, src.archive);
  const md5 = opts.md5 ?? src.md5;
  if (await pathExists(archive)) {
    try {
      assertMd5(await readFileBytes(archive), md5, archive);
    } catch (e) {
      if (e instanceof DataError) {
        throw new DataError(
          archive,
          e.fault,
          `cached archive is corrupt; delete it to re-download`,
          { expected: e.expected, found: e.found, cause: e },
        );
      }
      throw e;
    }
    return await extractCifarArchive(archive, variant, dataDir);
  }
  if (opts.download === false) {
    throw new DataError(
      finalDir,
      "not_available",
      `${src.title} is not on this machine and download is off; ${howToGet(src, dataDir)}`,
    );
  }
  try {
    await downloadVerified(opts.url ?? src.url, archive, {
      md5,
      fetch: opts.fetch,
      onProgress: opts.onProgress,
    });
  } catch (e) {
    // A machine without network access gets the same directions as one with download off.
    if (e instanceof DataError && e.fault === "download_failed") {
      throw new DataError(
        e.file,
        e.fault,
        `could not download ${src.title} (${e.message}); ${howToGet(src, dataDir)}`,
        { expected: e.expected, found: e.found, cause: e },
      );
    }
    throw e;
  }
  return await extractCifarArchive(archive, variant, dataDir);
}
