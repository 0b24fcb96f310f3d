/**
 * Reading YAML config text: syntax errors become a {@link ConfigError} naming file and line, and
 * field paths can be traced back to their line for later (schema) errors.
 *
 * @module
 */
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { ConfigError, type ConfigIssue } from "./config_error.ts";
import type { PathSegment } from "./config_path.ts";

/** A 1-based position in a source file. */
export interface SourcePosition {
  /** 1-based line. */
  readonly line: number;
  /** 1-based column. */
  readonly column: number;
}

/** Parsed YAML text: its plain JavaScript value and a way back from field paths to lines. */
export interface YamlSource {
  /** The name errors are reported under (usually the file path). */
  readonly file: string;
  /** The document as plain JavaScript (mappings → objects, sequences → arrays). */
  readonly value: unknown;
  /** The position of the deepest existing node along `path` (a mapping key's own position). */
  locate(path: readonly PathSegment[]): SourcePosition | undefined;
}

/**
 * Parse YAML 1.2 text (one document, duplicate keys rejected, `<<` merge keys allowed so that
 * profiles can reuse anchored entries). Every syntax error is reported, each with its line and
 * column, in one {@link ConfigError}.
 *
 * @example
 * ```ts
 * import { parseYaml } from "./yaml_source.ts";
 * const src = parseYaml("a:\n  b: 1\n", "inline.yaml");
 * src.value; // { a: { b: 1 } }
 * src.locate(["a", "b"]); // { line: 2, column: 3 }
 * ```
 */
export function parseYaml(text: string, file: string): YamlSource {
  const lineCounter = new LineCounter();
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, {
      lineCounter,
      uniqueKeys: true,
      merge: true,
      prettyErrors: false,
    });
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) {
      throw new Error(
        `reading ${file}: the yaml package reads the environment variables LOG_TOKENS and LOG_STREAM; ` +
          "run with --allow-env (or --allow-env=LOG_TOKENS,LOG_STREAM,MECO_PROFILE)",
        { cause: e },
      );
    }
    throw e;
  }
  const pos = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { line: Math.max(line, 1), column: col };
  };
  if (doc.errors.length > 0) {
    const issues: ConfigIssue[] = doc.errors.map((e) => {
      const p = e.linePos?.[0] ?? pos(e.pos[0]);
      const line = "line" in p ? p.line : 1;
      const column = "col" in p ? p.col : (p as SourcePosition).column;
      return {
        path: "(yaml)",
        message: `YAML syntax error: ${firstLine(e.message)}`,
        line,
        column,
      };
    });
    throw new ConfigError(file, issues);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new ConfigError(file, [{
      path: "(yaml)",
      message: `YAML error: ${(e as Error).message}`,
    }]);
  }
  return { file, value, locate: (path) => locate(doc, path, pos) };
}

function locate(
  doc: Document,
  path: readonly PathSegment[],
  pos: (offset: number) => SourcePosition,
): SourcePosition | undefined {
  let node: unknown = doc.contents;
  let found: SourcePosition | undefined = rangeStart(node, pos);
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p.key) === String(seg));
      if (pair === undefined) break;
      found = rangeStart(pair.key, pos) ?? found;
      node = pair.value;
    } else if (
      isSeq(node) && typeof seg === "number" && seg < node.items.length
    ) {
      node = node.items[seg];
      found = rangeStart(node, pos) ?? found;
    } else break;
  }
  return found;
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return typeof key === "string" ? key : undefined;
}

function rangeStart(
  node: unknown,
  pos: (offset: number) => SourcePosition,
): SourcePosition | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range ? pos(range[0]) : undefined;
}

function firstLine(message: string): string {
  return message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
}
