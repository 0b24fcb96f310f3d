/**
 * The one error type of `lib/config`: every problem of a config file, each with its field path.
 *
 * @module
 */

/** One problem in a config: where (`path`, and the source line when known) and what. */
export interface ConfigIssue {
  /** Dotted path of the field at fault, e.g. `victim.train.lr` or `profiles.smoke.attacks.0.budget`. */
  readonly path: string;
  /** What was expected and what was found, e.g. `expected number, received string`. */
  readonly message: string;
  /** 1-based line in the source file, when the field can be located there. */
  readonly line?: number;
  /** 1-based column in the source file, when the field can be located there. */
  readonly column?: number;
}

/**
 * A config that cannot be used: a YAML syntax error, an unknown key, a wrong type, a value out of
 * range. It carries every issue found, not just the first, and names the file in its message,
 * one issue per line: `configs/mnist_dfme.yaml: victim.train.lr: expected number, received string (line 14)`.
 *
 * @example
 * ```ts
 * import { ConfigError } from "./config_error.ts";
 * const err = new ConfigError("configs/x.yaml", [{ path: "seeds", message: "expected array, received number" }]);
 * err.message.includes("configs/x.yaml: seeds: expected array"); // true
 * ```
 */
export class ConfigError extends Error {
  /** The file (or pseudo-source such as `--set`) the issues belong to. */
  readonly file: string;
  /** Every issue found, in document order of discovery. */
  readonly issues: readonly ConfigIssue[];

  /** Build the error; the message lists every issue, prefixed by the file. */
  constructor(file: string, issues: readonly ConfigIssue[], context?: string) {
    super(formatConfigIssues(file, issues, context));
    this.name = "ConfigError";
    this.file = file;
    this.issues = issues;
  }
}

/**
 * Render issues as the lines of a {@link ConfigError} message: a header, then
 * `file: path: message (line N)` per issue.
 */
export function formatConfigIssues(
  file: string,
  issues: readonly ConfigIssue[],
  context?: string,
): string {
  const n = issues.length;
  const header = `invalid config ${file}${context ? ` (${context})` : ""}: ${n} issue${n === 1 ? "" : "s"}`;
  const lines = issues.map((i) => {
    const where = i.line === undefined
      ? ""
      : ` (line ${i.line}${i.column === undefined ? "" : `, column ${i.column}`})`;
    return `${file}: ${i.path}: ${i.message}${where}`;
  });
  return [header, ...lines].join("\n");
}
