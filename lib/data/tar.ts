/**
 * A small reader for (uncompressed) tar archives: POSIX ustar, with GNU long
 * names (`L`) and pax `path`/`size` records (`x`) understood. Header
 * checksums are verified; a member that runs past the end is `truncated`.
 *
 * @module
 */

import { DataError } from "./data_error.ts";

/** One member of a tar archive. */
export interface TarEntry {
  /** Member path, with any leading `./` removed. */
  name: string;
  /** `"file"` for regular files, `"directory"`, or `"other"` (links, devices, ...). */
  kind: "file" | "directory" | "other";
  /** Size of the member's data in bytes. */
  size: number;
  /** The member's data (a view into the archive bytes; empty unless a file). */
  data: Uint8Array;
}

const BLOCK = 512;
const decoder = new TextDecoder();

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return decoder.decode(end === -1 ? bytes : bytes.subarray(0, end));
}

function octal(field: Uint8Array, file: string, what: string): number {
  if (field[0] & 0x80) {
    // GNU base-256 encoding for large values.
    let v = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i];
    return v;
  }
  const s = cString(field).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) {
    throw new DataError(file, "bad_archive", `tar header ${what} not octal`, {
      found: JSON.stringify(s),
    });
  }
  return parseInt(s, 8);
}

function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

function parsePax(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const text = decoder.decode(data);
  let pos = 0;
  while (pos < text.length) {
    const space = text.indexOf(" ", pos);
    if (space === -1) break;
    const len = parseInt(text.slice(pos, space), 10);
    if (!(len > 0)) break;
    const record = text.slice(space + 1, pos + len - 1); // drop trailing "\n"
    const eq = record.indexOf("=");
    if (eq !== -1) out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return out;
}

/**
 * Lists the members of a tar archive held in memory.
 *
 * Faults, naming `file`: `bad_archive` (a header checksum or field is wrong),
 * `truncated` (a header or member runs past the end).
 *
 * @example
 * ```ts ignore
 * import { readTar } from "./tar.ts";
 * for (const e of readTar(tarBytes, "archive.tar")) console.log(e.name, e.size);
 * ```
 */
export function readTar(bytes: Uint8Array, file: string): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  let longName: string | undefined;
  let pax: Map<string, string> | undefined;
  while (offset < bytes.length) {
    if (offset + BLOCK > bytes.length) {
      throw new DataError(file, "truncated", `tar header at byte ${offset}`, {
        expected: `${BLOCK} bytes`,
        found: `${bytes.length - offset} bytes`,
      });
    }
    const h = bytes.subarray(offset, offset + BLOCK);
    if (isZeroBlock(h)) break; // end-of-archive marker
    const stored = octal(h.subarray(148, 156), file, "checksum");
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) {
      sum += i >= 148 && i < 156 ? 0x20 : h[i];
    }
    if (sum !== stored) {
      throw new DataError(
        file,
        "bad_archive",
        `tar header checksum at byte ${offset}`,
        { expected: stored, found: sum },
      );
    }
    let size = octal(h.subarray(124, 136), file, "size");
    const typeflag = String.fromCharCode(h[156] || 0x30);
    const isPosix = cString(h.subarray(257, 263)) === "ustar";
    let name = cString(h.subarray(0, 100));
    if (isPosix) {
      const prefix = cString(h.subarray(345, 500));
      if (prefix) name = `${prefix}/${name}`;
    }
    const paxSize = pax?.get("size");
    if (paxSize !== undefined) size = parseInt(paxSize, 10);
    const dataStart = offset + BLOCK;
    if (dataStart + size > bytes.length) {
      throw new DataError(file, "truncated", `tar member ${name}`, {
        expected: `${size} bytes of data`,
        found: `${bytes.length - dataStart} bytes`,
      });
    }
    const data = bytes.subarray(dataStart, dataStart + size);
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (typeflag === "L") {
      longName = cString(data);
      continue;
    }
    if (typeflag === "x") {
      pax = parsePax(data);
      continue;
    }
    if (typeflag === "g" || typeflag === "K") continue;
    name = pax?.get("path") ?? longName ?? name;
    longName = undefined;
    pax = undefined;
    while (name.startsWith("./")) name = name.slice(2);
    const kind = typeflag === "0" || typeflag === "7" ? "file" : typeflag === "5" ? "directory" : "other";
    entries.push({
      name,
      kind,
      size,
      data: kind === "file" ? data : new Uint8Array(0),
    });
  }
  return entries;
}
