/**
 * A real single-node Slurm cluster on this machine, for tests and for trying
 * `deno task sweep --scheduler slurm` without a cluster: `slurmctld` and
 * `slurmd` (Debian's `slurmctld slurmd slurm-client` packages) started in the
 * background with a slurm.conf, state, spool and logs under a temporary
 * folder, no systemd, no accounting (so no `sacct`: `squeue` and
 * `scontrol show job` tell a job's state and exit code). Authentication is
 * `auth/none` (nothing leaves the machine; a real cluster uses munge). Ports
 * are picked free, so clusters of concurrent test runs do not collide.
 * Commands reach the cluster through `SLURM_CONF` (see {@linkcode TestCluster.env}).
 *
 * As a command: `deno run -A lib/experiments/slurm_cluster.ts start [--cpus N]`
 * starts one and prints the `export SLURM_CONF=…` line and the stop command;
 * `… stop <dir>` stops it.
 *
 * @example
 * ```ts ignore
 * import { startTestCluster } from "./slurm_cluster.ts";
 * const cluster = await startTestCluster({ cpus: 2 });
 * try {
 *   // new Deno.Command("sbatch", { env: cluster.env, ... })
 * } finally {
 *   await cluster.stop();
 * }
 * ```
 *
 * @module
 */

import { cliError, parseCli } from "../cli/args.ts";

/** Binaries a test cluster needs. */
export const SLURM_BINARIES = ["slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo"] as const;

/** Options of {@linkcode startTestCluster}. */
export interface TestClusterOptions {
  /** CPUs of the one node (default 2). */
  cpus?: number;
  /** Name of the one partition (default `debug`). */
  partition?: string;
  /** Give up when the node is not idle after this long (default 30 000 ms). */
  timeoutMs?: number;
  /** Folder to hold conf, state, spool and logs (default a fresh temporary folder). */
  dir?: string;
}

/** A running single-node cluster. */
export interface TestCluster {
  /** Its folder: slurm.conf, state/, spool/, log/, the daemons' pid files. */
  dir: string;
  /** Path of its slurm.conf. */
  conf: string;
  /** Its partition. */
  partition: string;
  /** Environment for Slurm commands and for processes that call them: `{ SLURM_CONF }`. */
  env: Record<string, string>;
  /** Stops both daemons and removes the folder (unless `keep`). */
  stop: (keep?: boolean) => Promise<void>;
}

/** Where one of the Slurm binaries is missing, the first one; undefined when all are on PATH. */
export function missingSlurmBinary(): string | undefined {
  const path = (Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin").split(":").concat(["/usr/sbin", "/sbin"]);
  for (const b of SLURM_BINARIES) {
    if (!path.some((p) => isFile(`${p}/${b}`))) return b;
  }
  return undefined;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function slurmConf(dir: string, cpus: number, partition: string): string {
  return [
    "ClusterName=meco-test",
    "SlurmctldHost=localhost",
    `SlurmctldPort=${freePort()}`,
    `SlurmdPort=${freePort()}`,
    "SlurmUser=root",
    "AuthType=auth/none",
    "CredType=cred/none",
    "ProctrackType=proctrack/linuxproc",
    "TaskPlugin=task/none",
    "SelectType=select/cons_tres",
    "SelectTypeParameters=CR_CPU",
    "JobAcctGatherType=jobacct_gather/none",
    "AccountingStorageType=accounting_storage/none",
    "MailProg=/bin/true",
    "MpiDefault=none",
    "ReturnToService=2",
    "SlurmdParameters=config_overrides",
    // Finished jobs stay visible to `scontrol show job` for this long (exit codes).
    "MinJobAge=600",
    `StateSaveLocation=${dir}/state`,
    `SlurmdSpoolDir=${dir}/spool`,
    `SlurmctldPidFile=${dir}/slurmctld.pid`,
    `SlurmdPidFile=${dir}/slurmd.pid`,
    `SlurmctldLogFile=${dir}/log/slurmctld.log`,
    `SlurmdLogFile=${dir}/log/slurmd.log`,
    `NodeName=localhost NodeAddr=127.0.0.1 CPUs=${cpus} State=UNKNOWN`,
    `PartitionName=${partition} Nodes=localhost Default=YES MaxTime=INFINITE State=UP`,
    "",
  ].join("\n");
}

async function output(cmd: string, args: string[], env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${out.code}): ${text.trim()}`);
  return text;
}

async function readTail(path: string, chars = 2000): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).slice(-chars);
  } catch {
    return "(no log)";
  }
}

/**
 * Starts a single-node cluster and waits until its node is idle.
 *
 * @throws {Error} when a Slurm binary is missing, or the node is not idle within `timeoutMs` (with the daemons' logs)
 */
export async function startTestCluster(opts: TestClusterOptions = {}): Promise<TestCluster> {
  const missing = missingSlurmBinary();
  if (missing !== undefined) {
    throw new Error(`${missing} is not installed (apt-get install slurmctld slurmd slurm-client)`);
  }
  const cpus = opts.cpus ?? 2;
  const partition = opts.partition ?? "debug";
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "meco-slurm-" });
  for (const d of ["state", "spool", "log"]) await Deno.mkdir(`${dir}/${d}`, { recursive: true });
  const conf = `${dir}/slurm.conf`;
  await Deno.writeTextFile(conf, slurmConf(dir, cpus, partition));
  const env = { SLURM_CONF: conf };
  const daemons = [
    new Deno.Command("slurmctld", { args: ["-D", "-f", conf], env, stdin: "null", stdout: "null", stderr: "null" })
      .spawn(),
    new Deno.Command("slurmd", {
      args: ["-D", "-N", "localhost", "-f", conf],
      env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn(),
  ];
  for (const d of daemons) d.unref();
  const stop = async (keep = false) => {
    for (const d of daemons) {
      try {
        d.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
    for (const d of daemons) d.ref(); // so that awaiting their exit keeps the event loop alive
    await Promise.all(daemons.map((d) => d.status));
    if (!keep) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const t0 = Date.now();
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let state = "";
  while (Date.now() - t0 < timeoutMs) {
    try {
      state = (await output("sinfo", ["-h", "-N", "-o", "%T"], env)).trim();
      if (state === "idle") return { dir, conf, partition, env, stop };
    } catch (e) {
      state = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const logs = `slurmctld:\n${await readTail(`${dir}/log/slurmctld.log`)}\nslurmd:\n${await readTail(
    `${dir}/log/slurmd.log`,
  )}`;
  await stop();
  throw new Error(`the test cluster's node is not idle after ${timeoutMs} ms (last: ${state})\n${logs}`);
}

async function stopByPidFiles(dir: string): Promise<void> {
  for (const f of ["slurmd.pid", "slurmctld.pid"]) {
    try {
      const pid = Number((await Deno.readTextFile(`${dir}/${f}`)).trim());
      if (Number.isSafeInteger(pid) && pid > 1) Deno.kill(pid, "SIGTERM");
    } catch {
      // not running
    }
  }
  await new Promise((r) => setTimeout(r, 500));
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

const CLI = {
  usage: "deno run -A lib/experiments/slurm_cluster.ts start [--cpus N] | stop <dir>",
  description: "Starts a single-node Slurm cluster in the background (start) or stops one (stop <dir>).",
  positionals: { name: "start | stop <dir>", min: 1, max: 2 },
  options: { cpus: { type: "integer", min: 1, default: 2, help: "CPUs of the node" } },
} as const;

if (import.meta.main) {
  const { values, positionals } = parseCli(CLI);
  const [cmd, dir] = positionals;
  if (cmd === "start" && dir === undefined) {
    const c = await startTestCluster({ cpus: values.cpus });
    console.log(`export SLURM_CONF=${c.conf}`);
    console.log(`# stop it: deno run -A lib/experiments/slurm_cluster.ts stop ${c.dir}`);
    Deno.exit(0); // the daemons keep running
  } else if (cmd === "stop" && dir !== undefined) {
    await stopByPidFiles(dir);
  } else {
    cliError(CLI, `expected start or stop <dir>, found ${positionals.join(" ")}`);
  }
}
