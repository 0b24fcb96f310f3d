/**
 * `lib/serve`: a defended model behind an HTTP API. A server (`deno task
 * serve --config configs/serve.yaml`) loads a model bundle (written by `deno
 * task export-model` from the runner's cache), wraps it in any defense, and
 * answers `POST /v1/predict`, `GET /v1/usage` and `GET /healthz`. API keys
 * (`deno task keys`) carry a budget in images and a tier (soft
 * probabilities or hard labels); usage is accounted atomically and durably in
 * a SQLite store that several server processes may share. `deno task
 * serve-load` measures throughput and latency under concurrent clients.
 *
 * @example
 * ```ts ignore
 * import { loadServeConfig, startServer } from "./mod.ts";
 * const srv = await startServer(await loadServeConfig("configs/serve.yaml", { port: 0 }));
 * console.log(srv.url);
 * await srv.shutdown();
 * ```
 *
 * @module
 */
export { ApiError, type ApiErrorCode } from "./api_error.ts";
export { createHandler } from "./app.ts";
export {
  BUNDLE_FORMAT,
  type BundleMeta,
  type BundleModels,
  exportBundle,
  loadBundle,
  type LoadedBundle,
  writeBundle,
} from "./bundle.ts";
export * from "./client.ts";
export { loadServeConfig, parseServeConfig, type ServeConfig, ServeConfigSchema } from "./config.ts";
export { decodeImages, encodeBase64 } from "./decode.ts";
export { type LoadConfig, loadLoadConfig } from "./load_config.ts";
export { bundleBuildOptions, bundleDefenseEntry } from "./serve_defense.ts";
export { type RunningServer, startServer } from "./server.ts";
export { spawnServer } from "./spawn.ts";
export {
  type ChargeResult,
  hashToken,
  type KeyInfo,
  keyNameProblem,
  type KeyRef,
  KeyStore,
  StoreError,
  type Tier,
} from "./store.ts";
