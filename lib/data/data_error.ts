/**
 * The one error type raised by `lib/data`: every fault names the file (or URL,
 * or directory) at fault, says what kind of fault it is, and what was expected
 * versus what was found.
 *
 * @module
 */

/** The kinds of fault a data file, archive or download can have. */
export type DataFault =
  /** A file or directory that should exist does not. */
  | "missing_file"
  /** The leading magic number is not the one the format requires. */
  | "bad_magic"
  /** A header is readable but describes something unsupported or inconsistent. */
  | "bad_header"
  /** The file is shorter than its header (or format) says. */
  | "truncated"
  /** The file is longer than its header says. */
  | "trailing_bytes"
  /** A gzip stream is corrupt. */
  | "bad_gzip"
  /** A tar archive is corrupt or lacks a required member. */
  | "bad_archive"
  /** Image and label counts disagree, or a count differs from the canonical one. */
  | "count_mismatch"
  /** The content's checksum differs from the expected one. */
  | "checksum_mismatch"
  /** A CIFAR file's size is not a whole number of records. */
  | "record_size"
  /** A label is outside `[0, numClasses)`. */
  | "bad_label"
  /** A download could not be completed. */
  | "download_failed"
  /** The dataset is not on this machine and may not be downloaded. */
  | "not_available";

/** Details that make a {@linkcode DataError} precise. */
export interface DataErrorDetails {
  /** What the format or configuration expected, if it applies. */
  expected?: string | number;
  /** What was actually found, if it applies. */
  found?: string | number;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * An error in a data file, archive, directory or download.
 *
 * The message always starts with the file and the fault, e.g.
 * `"/data/t10k-labels-idx1-ubyte: truncated: expected 10008 bytes, found 512"`.
 *
 * @example
 * ```ts
 * import { DataError } from "./data_error.ts";
 * try {
 *   throw new DataError("a.idx", "bad_magic", "not an IDX file", { expected: "0x0000", found: "0x1f8b" });
 * } catch (e) {
 *   if (e instanceof DataError && e.fault === "bad_magic") console.log(e.file);
 * }
 * ```
 */
export class DataError extends Error {
  /** The file, directory or URL at fault. */
  readonly file: string;
  /** The kind of fault. */
  readonly fault: DataFault;
  /** What was expected, if it applies. */
  readonly expected?: string | number;
  /** What was found, if it applies. */
  readonly found?: string | number;

  /**
   * An error whose message reads `<file>: <fault>: <detail>`, with the expected and found values when given.
   *
   * @param file The file, directory or URL at fault.
   * @param fault The kind of fault.
   * @param detail A human explanation (what is wrong, what to do).
   * @param details Expected / found values and the underlying cause.
   */
  constructor(
    file: string,
    fault: DataFault,
    detail: string,
    details: DataErrorDetails = {},
  ) {
    const ef = details.expected !== undefined || details.found !== undefined
      ? ` (expected ${details.expected ?? "?"}, found ${details.found ?? "?"})`
      : "";
    super(`${file}: ${fault}: ${detail}${ef}`, { cause: details.cause });
    this.name = "DataError";
    this.file = file;
    this.fault = fault;
    this.expected = details.expected;
    this.found = details.found;
  }
}
