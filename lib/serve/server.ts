/**
 * Starting a server from a {@linkcode ServeConfig}: backend, bundle, defense,
 * store, then `Deno.serve`.
 *
 * @module
 */
import { initBackend } from "../backend/mod.ts";
import { buildDefense } from "../defenses/build.ts";
import { createHandler } from "./app.ts";
import { loadBundle } from "./bundle.ts";
import type { ServeConfig } from "./config.ts";
import { bundleBuildOptions, bundleDefenseEntry } from "./serve_defense.ts";
import { KeyStore } from "./store.ts";

/** A running server. */
export interface RunningServer {
  /** The address it listens on, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Stops accepting, finishes in-flight requests, frees the models and closes the store. */
  shutdown(): Promise<void>;
  /** Resolves when the server has stopped. */
  finished: Promise<void>;
}

/**
 * Starts serving `cfg`. Resolves once listening.
 *
 * @example
 * ```ts ignore
 * const srv = await startServer(await loadServeConfig("configs/serve.yaml"));
 * console.log(srv.url);
 * ```
 */
export async function startServer(cfg: ServeConfig, log: (m: string) => void = console.log): Promise<RunningServer> {
  const backend = await initBackend(cfg.backend);
  log(`backend ${backend.reason}`);
  const bundle = await loadBundle(cfg.bundle);
  const seed = cfg.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
  let store: KeyStore | undefined;
  try {
    const defense = buildDefense(
      bundleDefenseEntry(cfg.defense, bundle),
      bundle.victim,
      bundleBuildOptions(bundle, seed),
    );
    store = KeyStore.open(cfg.store);
    const handler = createHandler({
      defense,
      defenseLabel: cfg.defense.name ?? cfg.defense.type,
      imageShape: bundle.meta.image_shape,
      numClasses: bundle.meta.num_classes,
      store,
      maxBodyBytes: cfg.limits.max_body_bytes,
      maxBatch: cfg.limits.max_batch,
      model: `${bundle.meta.dataset}/${bundle.meta.arch}`,
    });
    let url = "";
    const listening = Promise.withResolvers<void>();
    const server = Deno.serve({
      hostname: cfg.host,
      port: cfg.port,
      onListen: ({ hostname, port }) => {
        url = `http://${hostname}:${port}`;
        listening.resolve();
      },
    }, handler);
    await listening.promise;
    const st = store;
    const finished = server.finished.then(() => {
      st.close();
      defense.dispose();
      bundle.dispose();
    });
    return { url, shutdown: () => server.shutdown(), finished };
  } catch (e) {
    store?.close();
    bundle.dispose();
    throw e;
  }
}
