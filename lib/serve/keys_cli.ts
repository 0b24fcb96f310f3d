/**
 * `deno task keys <command>` — API keys of a server's store:
 *
 * ```text
 * deno task keys create --config configs/serve.yaml --budget 10000 [--tier soft|hard] [--name alice]
 * deno task keys revoke --config configs/serve.yaml <id|name>
 * deno task keys list   --config configs/serve.yaml
 * ```
 *
 * `--store PATH` may replace `--config`. `create` prints the token once: the
 * store keeps only its SHA-256 hash. `--json` prints machine-readable output.
 *
 * @module
 */
import { ConfigError } from "../config/mod.ts";
import { loadServeConfig } from "./config.ts";
import { KeyStore, StoreError, type Tier } from "./store.ts";

function usage(msg?: string): never {
  if (msg) console.error(`error: ${msg}`);
  console.error(
    "usage: deno task keys create (--config <serve.yaml> | --store PATH) --budget N [--tier soft|hard] [--name NAME] [--json]\n" +
      "       deno task keys revoke (--config <serve.yaml> | --store PATH) <id|name> [--json]\n" +
      "       deno task keys list   (--config <serve.yaml> | --store PATH) [--json]",
  );
  Deno.exit(2);
}

if (import.meta.main) {
  const args = [...Deno.args];
  const command = args.shift() ?? usage("no command");
  if (!["create", "revoke", "list"].includes(command)) usage(`unknown command ${command}`);
  let config: string | undefined, storePath: string | undefined, name: string | undefined;
  let budget: number | undefined, tier: string = "soft", json = false;
  const positional: string[] = [];
  while (args.length > 0) {
    const a = args.shift()!;
    if (a === "--config") config = args.shift() ?? usage("--config needs a file");
    else if (a === "--store") storePath = args.shift() ?? usage("--store needs a path");
    else if (a === "--name") name = args.shift() ?? usage("--name needs a value");
    else if (a === "--tier") tier = args.shift() ?? usage("--tier needs soft or hard");
    else if (a === "--json") json = true;
    else if (a === "--budget") {
      const v = args.shift() ?? usage("--budget needs a number of images");
      budget = Number(v.replaceAll("_", ""));
      if (!Number.isSafeInteger(budget) || budget < 0) usage(`--budget: '${v}' is not a non-negative integer`);
    } else if (a.startsWith("--")) usage(`unknown option ${a}`);
    else positional.push(a);
  }
  if ((config === undefined) === (storePath === undefined)) usage("give exactly one of --config and --store");
  if (tier !== "soft" && tier !== "hard") usage(`--tier: expected soft or hard, found '${tier}'`);
  try {
    const path = storePath ?? (await loadServeConfig(config!)).store;
    const store = KeyStore.open(path);
    try {
      if (command === "create") {
        if (budget === undefined) usage("create needs --budget N (images)");
        if (positional.length > 0) usage(`unexpected argument ${positional[0]}`);
        const { token, key } = await store.create({ name, tier: tier as Tier, budget });
        if (json) console.log(JSON.stringify({ token, key }));
        else {
          console.log(
            `created key ${key.id}${key.name ? ` (${key.name})` : ""}: tier ${key.tier}, budget ${key.budget}`,
          );
          console.log(`token (shown once, only its SHA-256 is stored): ${token}`);
        }
      } else if (command === "revoke") {
        if (positional.length !== 1) usage("revoke needs one key id or name");
        const key = store.revoke(positional[0]);
        console.log(
          json ? JSON.stringify(key) : `revoked ${key.id}${key.name ? ` (${key.name})` : ""} at ${key.revoked}`,
        );
      } else {
        if (positional.length > 0) usage(`unexpected argument ${positional[0]}`);
        const keys = store.list();
        if (json) console.log(JSON.stringify(keys));
        else if (keys.length === 0) console.log(`no keys in ${path}`);
        else console.table(keys);
      }
    } finally {
      store.close();
    }
  } catch (e) {
    if (e instanceof ConfigError || e instanceof StoreError) {
      console.error(e.message);
      Deno.exit(1);
    }
    throw e;
  }
}
