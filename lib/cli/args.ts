/**
 * The one command-line parser of every CLI of the project, on Node's
 * `parseArgs` (`node:util`): each command declares its options (booleans,
 * strings, integers and numbers with ranges, choices, integer lists) and its
 * positional arguments, and gets typed values back. Every fault is an
 * {@linkcode ArgsError} naming the flag and what it expected: an unknown flag
 * (with the closest known one), a flag without its value, a number that is
 * not one or out of range, a value outside its choices, a missing required
 * flag, too few or too many positional arguments. `--help` (`-h`) prints the
 * help generated from the declaration.
 *
 * Numbers are strict: an integer is decimal digits, optionally grouped by
 * single underscores (`10_000`), with a leading `-` only where the range
 * allows negatives; so `""`, `0x32`, `1e3`, `1.5`, ` 7` and `+3` are refused.
 * A float is a plain decimal with an optional exponent (`0.5`, `1e-3`).
 *
 * @example
 * ```ts
 * import { parseArgv } from "./args.ts";
 * const spec = {
 *   usage: "deno task x [options]",
 *   options: { steps: { type: "integer", min: 1, default: 10, help: "steps" } },
 * } as const;
 * const { values } = parseArgv(spec, ["--steps", "20"]);
 * values.steps; // 20
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";

/** What every option with a value has: help, a placeholder, whether it is required. */
export interface Described {
  /** One line of help. */
  help: string;
  /** The value's name in the help (e.g. `DIR`). */
  value?: string;
  /** Whether the flag must be given. */
  required?: boolean;
}

/** A flag without a value: true when given. */
export interface BooleanOption {
  /** The kind of option. */
  type: "boolean";
  /** One line of help. */
  help: string;
}

/** A string value; `multiple` collects every occurrence. */
export interface StringOption extends Described {
  /** The kind of option. */
  type: "string";
  /** The value when the flag is not given. */
  default?: string;
  /** Whether the flag may repeat (the value is then the list of all of them). */
  multiple?: boolean;
  /** Refuse an empty value. */
  nonEmpty?: boolean;
}

/** An integer in [min, max] (safe integers only). */
export interface IntegerOption extends Described {
  /** The kind of option. */
  type: "integer";
  /** The value when the flag is not given. */
  default?: number;
  /** Smallest accepted value. */
  min?: number;
  /** Largest accepted value. */
  max?: number;
}

/** A finite decimal number in [min, max]. */
export interface NumberOption extends Described {
  /** The kind of option. */
  type: "number";
  /** The value when the flag is not given. */
  default?: number;
  /** Smallest accepted value. */
  min?: number;
  /** Largest accepted value. */
  max?: number;
}

/** One of a fixed set of strings. */
export interface ChoiceOption extends Described {
  /** The kind of option. */
  type: "choice";
  /** The accepted values. */
  choices: readonly string[];
  /** The value when the flag is not given. */
  default?: string;
}

/** A comma-separated list of integers in [min, max], e.g. `0,1,2`. */
export interface IntegerListOption extends Described {
  /** The kind of option. */
  type: "integers";
  /** Smallest accepted element. */
  min?: number;
  /** Largest accepted element. */
  max?: number;
}

/** Any option. */
export type OptionSpec =
  | BooleanOption
  | StringOption
  | IntegerOption
  | NumberOption
  | ChoiceOption
  | IntegerListOption;

/** A command: its usage line, options and positional arguments. */
export interface CommandSpec<O extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  /** The usage line, e.g. `deno task repro <config.yaml> [options]`. */
  usage: string;
  /** What the command does, printed under the usage by `--help`. */
  description?: string;
  /** The options, by flag name without the dashes. */
  options: O;
  /** Positional arguments: how they are shown, and how many are accepted (default none). */
  positionals?: { name: string; min?: number; max?: number };
}

/** The value type of option `S`. */
export type ValueOf<S> = S extends BooleanOption ? boolean
  : S extends { type: "string"; multiple: true } ? string[]
  : S extends StringOption ? string
  : S extends IntegerOption | NumberOption ? number
  : S extends { type: "choice"; choices: readonly (infer C)[] } ? C
  : S extends IntegerListOption ? number[]
  : never;

/** Whether option `S` always has a value (a boolean, repeatable, defaulted or required flag). */
export type AlwaysSet<S> = S extends BooleanOption ? true
  : S extends { multiple: true } ? true
  : S extends { default: unknown } ? true
  : S extends { required: true } ? true
  : false;

/** The parsed values of options `O`: undefined where a flag was not given and has no default. */
export type Values<O extends Record<string, OptionSpec>> = {
  -readonly [K in keyof O]: AlwaysSet<O[K]> extends true ? ValueOf<O[K]> : ValueOf<O[K]> | undefined;
};

/** A command line the spec refuses; the message names the flag and what it expected. */
export class ArgsError extends Error {
  /**
   * A refused command line.
   *
   * @param message what is wrong
   */
  constructor(message: string) {
    super(message);
    this.name = "ArgsError";
  }
}

function bounds(min?: number, max?: number): string {
  if (min !== undefined && max !== undefined) return ` in [${min}, ${max}]`;
  if (min !== undefined) return ` ≥ ${min}`;
  return max !== undefined ? ` ≤ ${max}` : "";
}

function rangeText(kind: "integer" | "number", min?: number, max?: number): string {
  return `${kind === "integer" ? "an integer" : "a number"}${bounds(min, max)}`;
}

/** What an option expects, in words (for errors and `--help`). */
export function expected(spec: OptionSpec): string {
  switch (spec.type) {
    case "boolean":
      return "no value";
    case "string":
      return spec.nonEmpty ? "a non-empty value" : "a value";
    case "integer":
    case "number":
      return rangeText(spec.type, spec.min, spec.max);
    case "choice":
      return `one of ${spec.choices.join(", ")}`;
    case "integers": {
      const b = bounds(spec.min, spec.max);
      return `a comma-separated list of integers${b ? `, each${b}` : ""}`;
    }
  }
}

const INTEGER = /^-?\d+(?:_\d+)*$/;
const FLOAT = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;

/**
 * Parses `text` as an integer in [min, max]: decimal digits, optionally
 * grouped by single underscores, with a leading `-` for negatives.
 *
 * @throws {ArgsError} naming `flag` and the expected range
 */
export function parseInteger(flag: string, text: string, min?: number, max?: number): number {
  const n = INTEGER.test(text) ? Number(text.replaceAll("_", "")) : NaN;
  if (!Number.isSafeInteger(n) || (min !== undefined && n < min) || (max !== undefined && n > max)) {
    throw new ArgsError(`${flag}: expected ${rangeText("integer", min, max)}, found ${JSON.stringify(text)}`);
  }
  return n;
}

/**
 * Parses `text` as a finite decimal number in [min, max] (`0.5`, `-2`, `1e-3`).
 *
 * @throws {ArgsError} naming `flag` and the expected range
 */
export function parseNumber(flag: string, text: string, min?: number, max?: number): number {
  const x = FLOAT.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(x) || (min !== undefined && x < min) || (max !== undefined && x > max)) {
    throw new ArgsError(`${flag}: expected ${rangeText("number", min, max)}, found ${JSON.stringify(text)}`);
  }
  return x;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length];
}

function suggestion(flag: string, names: string[]): string {
  const bare = flag.replace(/^-+/, "").replace(/=.*$/, "");
  let best = "", dist = Infinity;
  for (const n of names) {
    const dd = editDistance(bare, n);
    if (dd < dist) [best, dist] = [n, dd];
  }
  return dist <= Math.max(1, Math.floor(bare.length / 3)) ? `; did you mean --${best}?` : "";
}

function flagOf(message: string): string {
  return /'(-[^' =<]+)/.exec(message)?.[1] ?? "an option";
}

/**
 * Parses `argv` against `spec`. `--help` / `-h` sets `help` (and nothing is
 * validated then).
 *
 * @throws {ArgsError} for any flag or positional argument the spec refuses
 */
export function parseArgv<const O extends Record<string, OptionSpec>>(
  spec: CommandSpec<O>,
  argv: readonly string[],
): { values: Values<O>; positionals: string[]; help: boolean } {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, o] of Object.entries(spec.options)) {
    if (name === "help") throw new Error("--help is reserved");
    options[name] = {
      type: o.type === "boolean" ? "boolean" : "string",
      multiple: o.type === "string" && o.multiple === true,
    };
  }
  let raw: { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
  try {
    raw = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
  } catch (e) {
    const code = (e as { code?: string }).code;
    const msg = e instanceof Error ? e.message : String(e);
    const flag = flagOf(msg);
    const o = spec.options[flag.replace(/^-+/, "")] as OptionSpec | undefined;
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      if (argv.includes("--help") || argv.includes("-h")) return helpOnly<O>();
      const known = Object.keys(spec.options);
      throw new ArgsError(`unknown option ${flag}${suggestion(flag, known)}`);
    }
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && o !== undefined) {
      if (o.type === "boolean") throw new ArgsError(`${flag} takes no value`);
      const what = `${flag} needs a value: ${wanted(o)}`;
      if (/ambiguous/.test(msg)) throw new ArgsError(`${what}; write ${flag}=VALUE for a value starting with '-'`);
      throw new ArgsError(what);
    }
    throw new ArgsError(msg.split("\n")[0]);
  }
  if (raw.values.help === true) return helpOnly<O>();
  const values: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(spec.options) as [string, OptionSpec][]) {
    const flag = `--${name}`;
    const v = raw.values[name];
    if (v === undefined) {
      if (o.type !== "boolean" && o.required) throw new ArgsError(`missing ${flag}: ${wanted(o)}`);
      values[name] = o.type === "boolean"
        ? false
        : o.type === "string" && o.multiple
        ? []
        : "default" in o
        ? o.default
        : undefined;
      continue;
    }
    switch (o.type) {
      case "boolean":
        values[name] = v === true;
        break;
      case "string": {
        const list = Array.isArray(v) ? v : [v as string];
        if (o.nonEmpty && list.some((s) => s === "")) throw new ArgsError(`${flag}: expected a non-empty value`);
        values[name] = o.multiple ? list : list[0];
        break;
      }
      case "integer":
        values[name] = parseInteger(flag, v as string, o.min, o.max);
        break;
      case "number":
        values[name] = parseNumber(flag, v as string, o.min, o.max);
        break;
      case "choice":
        if (!o.choices.includes(v as string)) {
          throw new ArgsError(`${flag}: expected ${expected(o)}, found ${JSON.stringify(v)}`);
        }
        values[name] = v;
        break;
      case "integers": {
        const text = v as string;
        if (text === "") throw new ArgsError(`${flag}: expected ${expected(o)}, found ""`);
        values[name] = text.split(",").map((s) => parseInteger(flag, s, o.min, o.max));
        break;
      }
    }
  }
  const pos = raw.positionals;
  const { name: pName = "", min = 0, max = 0 } = spec.positionals ?? {};
  if (pos.length > max) {
    const extra = pos.slice(max).map((p) => JSON.stringify(p)).join(" ");
    if (max === 0) throw new ArgsError(`unexpected argument ${extra}: this command takes options only`);
    throw new ArgsError(`unexpected argument ${extra}: expected at most ${max} (${pName})`);
  }
  if (pos.length < min) throw new ArgsError(`missing ${pName}`);
  return { values: values as Values<O>, positionals: pos, help: false };
}

function helpOnly<O extends Record<string, OptionSpec>>(): { values: Values<O>; positionals: string[]; help: boolean } {
  return { values: {} as Values<O>, positionals: [], help: true };
}

/** The value a flag wants, for errors: its placeholder (strings) or range (numbers), and its help. */
function wanted(o: Exclude<OptionSpec, BooleanOption>): string {
  return `${o.type === "string" ? placeholder(o) : expected(o)} (${o.help})`;
}

function placeholder(o: OptionSpec): string {
  switch (o.type) {
    case "boolean":
      return "";
    case "choice":
      return o.value ?? o.choices.join("|");
    case "integer":
      return o.value ?? "N";
    case "number":
      return o.value ?? "X";
    case "integers":
      return o.value ?? "N,N,...";
    case "string":
      return o.value ?? "VALUE";
  }
}

/** The `--help` text of a command. */
export function helpText(spec: CommandSpec): string {
  const lines = [`usage: ${spec.usage}`];
  if (spec.description) lines.push("", spec.description);
  const rows: [string, string][] = Object.entries(spec.options).map(([name, o]) => {
    const ph = placeholder(o);
    let text = o.help;
    const notes: string[] = [];
    if ((o.type === "integer" || o.type === "number" || o.type === "integers") && !o.value) notes.push(expected(o));
    if (o.type === "choice" && o.value) notes.push(expected(o));
    if (o.type !== "boolean" && o.required) notes.push("required");
    if (o.type === "string" && o.multiple) notes.push("repeatable");
    if ("default" in o && o.default !== undefined) notes.push(`default ${o.default}`);
    if (notes.length > 0) text += ` (${notes.join("; ")})`;
    return [`--${name}${ph ? ` ${ph}` : ""}`, text];
  });
  rows.push(["-h, --help", "print this help"]);
  const width = Math.min(32, Math.max(...rows.map(([l]) => l.length)));
  lines.push("", "options:");
  for (const [l, r] of rows) {
    lines.push(l.length > width ? `  ${l}\n  ${" ".repeat(width)}  ${r}` : `  ${l.padEnd(width)}  ${r}`);
  }
  return lines.join("\n");
}

/**
 * Parses `argv` (default `Deno.args`) for a command's entry point: `--help`
 * prints the help and exits 0; a refused command line prints `error: …` and
 * the usage line to stderr and exits 2.
 */
export function parseCli<const O extends Record<string, OptionSpec>>(
  spec: CommandSpec<O>,
  argv: readonly string[] = Deno.args,
): { values: Values<O>; positionals: string[] } {
  let r: ReturnType<typeof parseArgv<O>>;
  try {
    r = parseArgv(spec, argv);
  } catch (e) {
    if (e instanceof ArgsError) cliError(spec, e.message);
    throw e;
  }
  if (r.help) {
    console.log(helpText(spec));
    Deno.exit(0);
  }
  return r;
}

/** Prints `error: message` and the command's usage line to stderr, and exits 2. */
export function cliError(spec: Pick<CommandSpec, "usage">, message: string): never {
  console.error(`error: ${message}`);
  console.error(`usage: ${spec.usage}\n(--help lists every option)`);
  Deno.exit(2);
}
