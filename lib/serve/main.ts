/**
 * `deno task serve --config configs/serve.yaml [--port N] [--store PATH]`:
 * serves a model bundle behind a defense over HTTP (see `app.ts` for the API).
 * Prints `listening on <url>` once ready; SIGINT/SIGTERM stop it gracefully.
 *
 * @module
 */
import { ConfigError } from "../config/mod.ts";
import { CheckpointError } from "../train/checkpoint.ts";
import { loadServeConfig, type ServeConfig } from "./config.ts";
import { startServer } from "./server.ts";
import { StoreError } from "./store.ts";

function usage(msg?: string): never {
  if (msg) console.error(`error: ${msg}`);
  console.error("usage: deno task serve --config <serve.yaml> [--port N] [--store PATH] [--bundle DIR]");
  Deno.exit(2);
}

if (import.meta.main) {
  const args = [...Deno.args];
  let path: string | undefined;
  const overrides: Partial<ServeConfig> = {};
  while (args.length > 0) {
    const a = args.shift()!;
    if (a === "--config") path = args.shift() ?? usage("--config needs a file");
    else if (a === "--port") {
      const v = args.shift() ?? usage("--port needs a number");
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) usage(`--port: '${v}' is not a port number (0-65535)`);
      overrides.port = n;
    } else if (a === "--store") overrides.store = args.shift() ?? usage("--store needs a path");
    else if (a === "--bundle") overrides.bundle = args.shift() ?? usage("--bundle needs a directory");
    else usage(`unexpected argument ${a}`);
  }
  if (path === undefined) usage("no --config given");
  try {
    const cfg = await loadServeConfig(path, overrides);
    const srv = await startServer(cfg);
    console.log(`listening on ${srv.url} (defense ${cfg.defense.name ?? cfg.defense.type}, store ${cfg.store})`);
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(sig, () => {
        console.log(`${sig}: shutting down`);
        srv.shutdown();
      });
    }
    await srv.finished;
  } catch (e) {
    if (e instanceof ConfigError || e instanceof CheckpointError || e instanceof StoreError) {
      console.error(e.message);
      Deno.exit(1);
    }
    throw e;
  }
}
