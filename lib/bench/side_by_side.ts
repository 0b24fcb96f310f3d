/**
 * This project's workloads beside the PyTorch peer's, on the same machine, one
 * right after the other: for every round, every oneDNN instruction-set cap and
 * every workload, `deno task bench --only W` and then the peer script with
 * `--threads 2 --only W`. Prints a Markdown table per cap with each round's
 * milliseconds, the ratios (ours / PyTorch), the CPU, oneDNN's ISA and the
 * peer's sgemm rate, and writes the raw lines as JSON (`--out`).
 *
 * ```sh
 * deno run -A lib/bench/side_by_side.ts --peer PATH/torch_bench.py --isa default,AVX2 --rounds 2
 * ```
 *
 * @module
 */
import { parseCli } from "../cli/args.ts";
import { commandLine, gitCommit } from "../experiments/provenance.ts";
import { WORKLOADS } from "./workloads.ts";

/** One workload timed by both sides in one round under one ISA cap. */
export interface SideBySide {
  round: number;
  /** `default` or the value given to DNNL_MAX_CPU_ISA. */
  isa: string;
  name: string;
  ours: { ms: number; cpu: string; onednn_isa: string | null };
  peer: { ms: number; blas_gflops?: number; torch?: string };
}

/** The last line of `out` that parses as a JSON object with a numeric `ms`, or an error naming the command. */
export function lastTiming(out: string, what: string): Record<string, unknown> & { ms: number } {
  for (const line of out.trim().split("\n").reverse()) {
    try {
      const v = JSON.parse(line);
      if (typeof v === "object" && v !== null && typeof v.ms === "number") return v;
    } catch {
      // not JSON: a log line
    }
  }
  throw new Error(`${what} printed no timing line; its output ends: ${out.trim().split("\n").slice(-3).join(" | ")}`);
}

async function run(cmd: string, args: string[], env: Record<string, string>, what: string) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${what} failed (exit ${out.code}): ${new TextDecoder().decode(out.stderr).trim().slice(-400)}`);
  }
  return lastTiming(text, what);
}

/** The Markdown table of one ISA cap's rows: ms per round on each side and the ratios. */
export function sideBySideTable(rows: SideBySide[]): string {
  const rounds = [...new Set(rows.map((r) => r.round))].sort();
  const names = [...new Set(rows.map((r) => r.name))];
  const fmt = (x: number) => x >= 100 ? x.toFixed(0) : x.toFixed(1);
  const lines = [
    "| workload | this project, ms | PyTorch, ms | ratio |",
    "| --- | ---: | ---: | ---: |",
  ];
  for (const name of names) {
    const per = rounds.map((k) => rows.find((r) => r.name === name && r.round === k)).filter((r) => r !== undefined);
    lines.push(
      `| ${name} | ${per.map((r) => fmt(r.ours.ms)).join(" / ")} | ${per.map((r) => fmt(r.peer.ms)).join(" / ")} | ${
        per.map((r) => (r.ours.ms / r.peer.ms).toFixed(2)).join(" / ")
      } |`,
    );
  }
  return lines.join("\n");
}

const CLI = {
  usage:
    "deno run -A lib/bench/side_by_side.ts --peer FILE [--isa default,AVX2] [--rounds N] [--only A,B] [--out FILE]",
  description: "Times each bench workload here and in the PyTorch peer, one right after the other.",
  options: {
    peer: { type: "string", nonEmpty: true, required: true, value: "FILE", help: "the peer's torch_bench.py" },
    python: { type: "string", nonEmpty: true, default: "/usr/bin/python3", value: "EXE", help: "Python with torch" },
    isa: { type: "string", nonEmpty: true, default: "default,AVX2", value: "LIST", help: "DNNL_MAX_CPU_ISA caps" },
    rounds: { type: "integer", min: 1, default: 2, help: "rounds over every workload" },
    only: { type: "string", nonEmpty: true, value: "LIST", help: "these workloads only (comma-separated)" },
    out: { type: "string", nonEmpty: true, value: "FILE", help: "write the rows as JSON" },
  },
} as const;

if (import.meta.main) {
  const { values: a } = parseCli(CLI);
  const known = WORKLOADS.map((w) => w.name);
  const names = a.only === undefined ? known : a.only.split(",");
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) {
    console.error(`--only: no workload named ${unknown.join(", ")} (workloads: ${known.join(", ")})`);
    Deno.exit(2);
  }
  try {
    await Deno.stat(a.peer);
  } catch {
    console.error(`--peer: ${a.peer} cannot be read`);
    Deno.exit(2);
  }
  const isas = a.isa.split(",");
  const rows: SideBySide[] = [];
  for (let round = 1; round <= a.rounds; round++) {
    for (const isa of isas) {
      const env: Record<string, string> = isa === "default" ? {} : { DNNL_MAX_CPU_ISA: isa };
      for (const name of names) {
        const ours = await run(
          Deno.execPath(),
          ["run", "-A", "lib/bench/main.ts", "--only", name],
          env,
          `bench ${name}`,
        );
        const peer = await run(a.python, [a.peer, "--threads", "2", "--only", name], env, `peer ${name}`);
        const row: SideBySide = {
          round,
          isa,
          name,
          ours: { ms: ours.ms, cpu: String(ours.cpu), onednn_isa: (ours.onednn_isa as string | null) ?? null },
          peer: { ms: peer.ms, blas_gflops: peer.blas_gflops as number | undefined, torch: peer.torch as string },
        };
        rows.push(row);
        console.error(JSON.stringify(row));
      }
    }
  }
  const commit = await gitCommit();
  for (const isa of isas) {
    const mine = rows.filter((r) => r.isa === isa);
    const gflops = mine.map((r) => r.peer.blas_gflops).filter((g) => g !== undefined) as number[];
    console.log(
      `\n${isa === "default" ? "default ISA" : `DNNL_MAX_CPU_ISA=${isa}`}: ${mine[0].ours.cpu}, oneDNN ${
        [...new Set(mine.map((r) => r.ours.onednn_isa))].join("/")
      }, peer sgemm ${Math.min(...gflops).toFixed(0)}–${Math.max(...gflops).toFixed(0)} GFLOP/s, commit ${
        commit.slice(0, 7)
      }\n`,
    );
    console.log(sideBySideTable(mine));
  }
  if (a.out !== undefined) {
    await Deno.writeTextFile(a.out, JSON.stringify({ command: commandLine(), commit, rows }, null, 2) + "\n");
  }
}
