/**
 * `deno task serve-load configs/serve_load.yaml`: the load test. For each
 * defense of the config it starts a real server (child process, loopback,
 * fresh store), sends a bounded load from concurrent clients and measures
 * throughput and latency, then lets concurrent clients drain a budgeted key
 * and checks that exactly the budget was served and accounted. Writes
 * `results/<name>/summary.json` ({meta, rows}) with the command and commit.
 *
 * @module
 */
import { parseCli } from "../cli/args.ts";
import { ConfigError, configHash, loadConfig } from "../config/mod.ts";
import { loadDataset } from "../data/mod.ts";
import { initBackend } from "../backend/mod.ts";
import { writeJson, writeTextAtomic } from "../experiments/cache.ts";
import { toCsv } from "../experiments/results.ts";
import {
  commandLine,
  gitCommit,
  processProvenance,
  type RunProvenance,
  stamp,
  summariseProvenance,
} from "../experiments/provenance.ts";
import { type BundleMeta, exportBundle } from "./bundle.ts";
import { drainBudget, getUsage, type ImagePool, type LoadResult, quantile, runLoad } from "./client.ts";
import { type LoadConfig, loadLoadConfig } from "./load_config.ts";
import { spawnServer } from "./spawn.ts";
import { KeyStore } from "./store.ts";

/**
 * The backend and oneDNN a server's `backend …` log line names (e.g. "wasm (auto): …, oneDNN 2.6.3 (avx512_core, …)"),
 * as the rows' provenance records them: the backend's name, and oneDNN's version and ISA when its kernels loaded.
 */
export function serverBackend(reason: string): [string, { ok: boolean; version?: string; isa?: string }] {
  const name = /^[\w-]+/.exec(reason)?.[0] ?? "unknown";
  const m = /oneDNN (\d[\w.]*) \(([a-z0-9_]+)/.exec(reason);
  return [name, m === null ? { ok: false } : { ok: true, version: m[1], isa: m[2] }];
}

/** One row of the load test: a defense. */
export interface LoadRow {
  defense: string;
  clients: number;
  requests: number;
  batch: number;
  images: number;
  failed: number;
  seconds: number;
  requests_per_s: number;
  images_per_s: number;
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
  /** Server-side time of the defense and model per request (Server-Timing `infer`). */
  infer_p50_ms: number;
  infer_p99_ms: number;
  /**
   * The run that measured the row: commit, command, date, the servers' backend and oneDNN (from the line each server
   * logs), the CPU and its load when the row was finished.
   */
  provenance?: RunProvenance;
  drain_clients: number;
  drain_budget: number;
  drain_served: number;
  drain_used: number;
  drain_refused: number;
  budget_exact: boolean;
}

async function readMeta(dir: string): Promise<BundleMeta | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/bundle.json`));
  } catch {
    return undefined;
  }
}

async function ensureBundle(cfg: LoadConfig, log: (m: string) => void): Promise<BundleMeta> {
  const b = cfg.bundle;
  const loaded = await loadConfig(b.experiment, b.profile);
  const have = await readMeta(b.out);
  if (have?.source.config_hash === loaded.hash && have.source.seed === b.seed) {
    log(`bundle ${b.out}: up to date (${b.experiment}, profile ${b.profile}, seed ${b.seed})`);
    return have;
  }
  log(`bundle ${b.out}: exporting from ${b.experiment} (profile ${b.profile}, seed ${b.seed})`);
  await initBackend(loaded.config.backend);
  return await exportBundle(loaded, b.out, { seed: b.seed, log });
}

const CLI = {
  usage: "deno task serve-load <serve_load.yaml>",
  description: "The load test: throughput, latency and exact budgets of a real server per defense.",
  positionals: { name: "<serve_load.yaml>", min: 1, max: 1 },
  options: {},
} as const;

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

if (import.meta.main) {
  const path = parseCli(CLI).positionals[0];
  const log = (m: string) => console.log(m);
  let cfg: LoadConfig;
  try {
    cfg = await loadLoadConfig(path);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      Deno.exit(1);
    }
    throw e;
  }
  const t0 = performance.now();
  const loadStart = Deno.loadavg();
  const commit = await gitCommit();
  const bundle = await ensureBundle(cfg, log);
  const test = await loadDataset(bundle.dataset as "mnist", "test");
  const per = bundle.image_shape.reduce((a, b) => a * b, 1);
  const poolN = Math.min(test.n, 1024);
  const pool: ImagePool = { data: test.images.subarray(0, poolN * per), n: poolN, shape: bundle.image_shape };
  const work = await Deno.makeTempDir({ prefix: "meco-serve-load-" });
  const rows: LoadRow[] = [];
  let backend = "";
  const L = cfg.load;
  type Served = {
    label: string;
    srv: Awaited<ReturnType<typeof spawnServer>>;
    loadToken: string;
    drainToken: string;
    runs: LoadResult[];
  };
  const served: Served[] = [];
  try {
    // Every defense's server up at once, so that the measured rounds can alternate between them.
    for (const [i, d] of cfg.defenses.entries()) {
      const label = d.name ?? d.type;
      const store = `${work}/keys-${i}.db`;
      const serveCfg = `${work}/serve-${i}.json`;
      // JSON is YAML: the serving config of this defense.
      await Deno.writeTextFile(
        serveCfg,
        JSON.stringify({ bundle: cfg.bundle.out, defense: d, store, host: "127.0.0.1", port: 0, limits: cfg.limits }),
      );
      const s = KeyStore.open(store);
      const loadKey = await s.create({
        name: "load",
        tier: "soft",
        budget: L.clients * (L.rounds * L.requests + L.warmup) * L.batch,
      });
      const drainKey = await s.create({ name: "drain", tier: "soft", budget: cfg.drain.budget });
      s.close();
      const srv = await spawnServer(serveCfg, [], { timeoutMs: 300_000 });
      served.push({ label, srv, loadToken: loadKey.token, drainToken: drainKey.token, runs: [] });
      backend = /backend (.*)/.exec(srv.output())?.[1] ?? backend;
      log(`${label}: serving at ${srv.url}`);
      if (L.warmup > 0) {
        await runLoad({
          url: srv.url,
          token: loadKey.token,
          pool,
          clients: L.clients,
          requests: L.warmup,
          batch: L.batch,
          encoding: L.encoding,
        });
      }
    }
    for (let round = 0; round < L.rounds; round++) {
      // Alternate the order between rounds so that drifting host load favours no defense.
      const order = round % 2 === 0 ? served : [...served].reverse();
      for (const sv of order) {
        log(
          `round ${
            round + 1
          }/${L.rounds}, ${sv.label}: ${L.clients} clients × ${L.requests} requests × ${L.batch} images`,
        );
        sv.runs.push(
          await runLoad({
            url: sv.srv.url,
            token: sv.loadToken,
            pool,
            clients: L.clients,
            requests: L.requests,
            batch: L.batch,
            encoding: L.encoding,
          }),
        );
      }
    }
    for (const [i, sv] of served.entries()) {
      log(`${sv.label}: drain a key of ${cfg.drain.budget} images with ${cfg.drain.clients} clients`);
      const dr = await drainBudget({
        url: sv.srv.url,
        token: sv.drainToken,
        pool,
        clients: cfg.drain.clients,
        maxBatch: cfg.drain.max_batch,
        encoding: L.encoding,
        seed: i + 1,
      });
      const used = (await getUsage(sv.srv.url, sv.drainToken)).used;
      const lat = sv.runs.flatMap((r) => r.latencies), infer = sv.runs.flatMap((r) => r.infer);
      const ok = sv.runs.reduce((a, r) => a + r.ok, 0), images = sv.runs.reduce((a, r) => a + r.images, 0);
      const seconds = sv.runs.reduce((a, r) => a + r.seconds, 0);
      const failed = sv.runs.reduce((a, r) => a + Object.values(r.failed).reduce((x, y) => x + y, 0), 0);
      const row: LoadRow = {
        defense: sv.label,
        clients: L.clients,
        requests: ok + failed,
        batch: L.batch,
        images,
        failed,
        seconds: round(seconds, 3),
        requests_per_s: round(ok / seconds),
        images_per_s: round(images / seconds, 1),
        p50_ms: round(quantile(lat, 0.5)),
        p99_ms: round(quantile(lat, 0.99)),
        mean_ms: round(lat.reduce((a, b) => a + b, 0) / Math.max(1, lat.length)),
        infer_p50_ms: round(quantile(infer, 0.5), 3),
        infer_p99_ms: round(quantile(infer, 0.99), 3),
        drain_clients: cfg.drain.clients,
        drain_budget: cfg.drain.budget,
        drain_served: dr.served,
        drain_used: used,
        drain_refused: dr.refused,
        budget_exact: dr.served === cfg.drain.budget && used === cfg.drain.budget && dr.failed === 0,
        provenance: stamp(await processProvenance(...serverBackend(backend), commandLine())),
      };
      rows.push(row);
      log(
        `${sv.label}: ${row.requests_per_s} req/s, ${row.images_per_s} images/s, p50 ${row.p50_ms} ms, ` +
          `p99 ${row.p99_ms} ms, inference p50 ${row.infer_p50_ms} ms, failed ${failed}; ` +
          `drain served ${dr.served}/${cfg.drain.budget}, used ${used}`,
      );
    }
  } finally {
    for (const sv of served) await sv.srv.stop();
    await Deno.remove(work, { recursive: true });
  }
  const none = rows.find((r) => r.defense === "none");
  const meco = rows.find((r) => r.defense === "meco");
  const summary = {
    meta: {
      name: cfg.name,
      description: cfg.description,
      commit,
      command: commandLine(),
      config: path,
      config_hash: await configHash(cfg),
      backend,
      bundle: { dir: cfg.bundle.out, ...bundle.source, victim_acc: bundle.victim_acc, meco: bundle.meco },
      cpus: navigator.hardwareConcurrency,
      // The host is shared: its load average (1, 5, 15 min) before and after says how contended the CPUs were.
      loadavg_start: loadStart,
      loadavg_end: Deno.loadavg(),
      load_generator: "same host, one Deno process (fetch over loopback); server: one Deno process per defense",
      meco_overhead_p50: none && meco ? round(meco.p50_ms / none.p50_ms, 3) : null,
      meco_overhead_infer_p50: none && meco ? round(meco.infer_p50_ms / none.infer_p50_ms, 3) : null,
      meco_overhead_throughput: none && meco ? round(none.images_per_s / meco.images_per_s, 3) : null,
      minutes: round((performance.now() - t0) / 60000, 2),
      generated: new Date().toISOString(),
      provenance: summariseProvenance(rows),
    },
    rows,
  };
  const dir = `results/${cfg.name}`;
  await writeJson(`${dir}/summary.json`, summary);
  await writeTextAtomic(`${dir}/rows.csv`, toCsv(rows as unknown as Record<string, unknown>[]));
  console.table(rows.map((r) => ({
    defense: r.defense,
    "req/s": r.requests_per_s,
    "img/s": r.images_per_s,
    p50_ms: r.p50_ms,
    p99_ms: r.p99_ms,
    infer_p50_ms: r.infer_p50_ms,
    exact: r.budget_exact,
  })));
  log(`wrote ${dir}/summary.json`);
  if (rows.some((r) => !r.budget_exact || r.failed > 0)) {
    console.error("error: a budget was not exact or requests failed (see rows)");
    Deno.exit(1);
  }
}
