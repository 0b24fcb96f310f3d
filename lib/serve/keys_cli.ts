/**
 * `deno task keys <command>` — API keys of a server's store:
 *
 * ```text
 * deno task keys create --config configs/serve.yaml --budget 10000 [--tier soft|hard] [--name alice] [--create]
 * deno task keys revoke --config configs/serve.yaml (<id|name> | --id ID | --name NAME)
 * deno task keys list   --config configs/serve.yaml
 * ```
 *
 * `--store PATH` may replace `--config`. A store that does not exist is an
 * error (a mistyped path must not become a new, empty store), except for
 * `create --create`, which creates it owner-only. `create` prints the token
 * once: the store keeps only its SHA-256 hash. `revoke <ref>` takes `ref` as
 * a key id when a key has that id, else as a name; `--id` and `--name` say
 * which. Names are printed with control and bidirectional characters
 * escaped. `--json` prints machine-readable output.
 *
 * @module
 */
import { cliError, type CommandSpec, helpText, parseCli } from "../cli/args.ts";
import { ConfigError } from "../config/mod.ts";
import { loadServeConfig } from "./config.ts";
import { printable, safeJson } from "./printable.ts";
import { type KeyInfo, KeyStore, StoreError } from "./store.ts";

const STORE_OPTIONS = {
  config: { type: "string", nonEmpty: true, value: "FILE", help: "the serving config naming the store" },
  store: { type: "string", nonEmpty: true, value: "PATH", help: "the store itself, instead of --config" },
  json: { type: "boolean", help: "machine-readable output" },
} as const;

const CREATE = {
  usage: "deno task keys create (--config FILE | --store PATH) --budget N [--tier soft|hard] [--name NAME] " +
    "[--create] [--json]",
  description: "Creates a key and prints its token, once.",
  options: {
    ...STORE_OPTIONS,
    budget: { type: "integer", min: 0, required: true, help: "images the key may query in total" },
    tier: { type: "choice", choices: ["soft", "hard"], default: "soft", help: "probabilities or top-1 labels" },
    name: { type: "string", value: "NAME", help: "a label (no control or bidirectional characters)" },
    create: { type: "boolean", help: "create the store when it does not exist" },
  },
} as const;

const REVOKE = {
  usage: "deno task keys revoke (--config FILE | --store PATH) (<id|name> | --id ID | --name NAME) [--json]",
  description: "Revokes one key: by id when a key has that id, else by name; --id and --name say which.",
  positionals: { name: "<id|name>", max: 1 },
  options: {
    ...STORE_OPTIONS,
    id: { type: "string", nonEmpty: true, value: "ID", help: "revoke the key with this id" },
    name: { type: "string", nonEmpty: true, value: "NAME", help: "revoke the one key with this name" },
  },
} as const;

const LIST = {
  usage: "deno task keys list (--config FILE | --store PATH) [--json]",
  description: "Lists every key: id, name, tier, budget, used, created, revoked.",
  options: STORE_OPTIONS,
} as const;

const COMMANDS: Record<string, CommandSpec> = { create: CREATE, revoke: REVOKE, list: LIST };
const USAGE = { usage: [CREATE.usage, REVOKE.usage, LIST.usage].join("\n       ") };

/** Opens the store of `--config` or `--store`; one that does not exist is created only when `create` is set. */
async function openStore(
  values: { config?: string; store?: string },
  spec: CommandSpec,
  create: boolean,
): Promise<{ store: KeyStore; path: string }> {
  if ((values.config === undefined) === (values.store === undefined)) {
    cliError(spec, "give exactly one of --config and --store");
  }
  const path = values.store ?? (await loadServeConfig(values.config!)).store;
  let exists = true;
  try {
    Deno.statSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    exists = false;
  }
  if (!exists && !create) {
    throw new StoreError(
      `key store ${path} does not exist` +
        (spec === CREATE
          ? "; check the path, or pass --create to create it"
          : "; check the path (deno task keys create --create makes a new store)"),
    );
  }
  return { store: KeyStore.open(path, { create }), path };
}

function describe(key: KeyInfo): string {
  return `${key.id}${key.name ? ` (${printable(key.name)})` : ""}`;
}

function table(keys: KeyInfo[]): string {
  const cols = ["id", "name", "tier", "budget", "used", "created", "revoked"] as const;
  const rows = keys.map((k) => cols.map((c) => (c === "name" ? printable(k.name) : String(k[c] ?? "-"))));
  const widths = cols.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) => cells.map((x, i) => x.padEnd(widths[i])).join("  ").trimEnd();
  return [line(cols), ...rows.map(line)].join("\n");
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h") {
    if (command === undefined) cliError(USAGE, "no command (create, revoke or list)");
    console.log([CREATE, REVOKE, LIST].map((c) => helpText(c)).join("\n\n"));
    return;
  }
  if (!(command in COMMANDS)) cliError(USAGE, `unknown command ${JSON.stringify(command)} (create, revoke or list)`);
  if (command === "create") {
    const { values } = parseCli(CREATE, rest);
    const { store } = await openStore(values, CREATE, values.create);
    try {
      const { token, key } = await store.create({ name: values.name, tier: values.tier, budget: values.budget });
      if (values.json) console.log(safeJson({ token, key }));
      else {
        console.log(`created key ${describe(key)}: tier ${key.tier}, budget ${key.budget}`);
        console.log(`token (shown once, only its SHA-256 is stored): ${token}`);
      }
    } finally {
      store.close();
    }
  } else if (command === "revoke") {
    const { values, positionals } = parseCli(REVOKE, rest);
    const refs = [
      ...positionals.map((p) => ({ ref: p, by: "auto" as const })),
      ...(values.id !== undefined ? [{ ref: values.id, by: "id" as const }] : []),
      ...(values.name !== undefined ? [{ ref: values.name, by: "name" as const }] : []),
    ];
    if (refs.length !== 1) cliError(REVOKE, "give exactly one of <id|name>, --id ID and --name NAME");
    if (refs[0].ref === "") cliError(REVOKE, "the key id or name is empty");
    const { store } = await openStore(values, REVOKE, false);
    try {
      const key = store.revoke(refs[0].ref, refs[0].by);
      console.log(values.json ? safeJson(key) : `revoked ${describe(key)} at ${key.revoked}`);
    } finally {
      store.close();
    }
  } else {
    const { values } = parseCli(LIST, rest);
    const { store, path } = await openStore(values, LIST, false);
    try {
      const keys = store.list();
      if (values.json) console.log(safeJson(keys));
      else if (keys.length === 0) console.log(`no keys in ${path}`);
      else console.log(table(keys));
    } finally {
      store.close();
    }
  }
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    if (e instanceof ConfigError || e instanceof StoreError) {
      console.error(e.message);
      Deno.exit(1);
    }
    throw e;
  }
}
