/**
 * `deno task serve --config configs/serve.yaml [--port N] [--store PATH]`:
 * serves a model bundle behind a defense over HTTP (see `app.ts` for the API).
 * Prints `listening on <url>` once ready; SIGINT/SIGTERM stop it gracefully.
 *
 * @module
 */
import { parseCli } from "../cli/args.ts";
import { ConfigError } from "../config/mod.ts";
import { CheckpointError } from "../train/checkpoint.ts";
import { loadServeConfig, type ServeConfig } from "./config.ts";
import { startServer } from "./server.ts";
import { StoreError } from "./store.ts";

const CLI = {
  usage: "deno task serve --config <serve.yaml> [--port N] [--store PATH] [--bundle DIR]",
  description: "Serves a model bundle behind a defense over HTTP.",
  options: {
    config: { type: "string", required: true, nonEmpty: true, value: "FILE", help: "the serving config" },
    port: { type: "integer", min: 0, max: 65535, help: "TCP port instead of the config's; 0 picks a free one" },
    store: { type: "string", nonEmpty: true, value: "PATH", help: "key store, instead of the config's" },
    bundle: { type: "string", nonEmpty: true, value: "DIR", help: "model bundle, instead of the config's" },
  },
} as const;

if (import.meta.main) {
  const { values } = parseCli(CLI);
  const path = values.config;
  const overrides: Partial<ServeConfig> = {};
  if (values.port !== undefined) overrides.port = values.port;
  if (values.store !== undefined) overrides.store = values.store;
  if (values.bundle !== undefined) overrides.bundle = values.bundle;
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
