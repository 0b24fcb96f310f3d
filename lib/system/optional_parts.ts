/**
 * The parts of a full installation that the workbench can do without: oneDNN
 * (the native kernels and compiled training steps), the Fashion-MNIST data
 * set, Jupyter (executing notebooks), Slurm (a single-node cluster for the
 * sweep tests) and Chromium (figures as PNG). Each is a
 * Debian package; without it the workbench runs (slower, or with fewer
 * outputs) and the tests that need it are skipped with the reason and the
 * command that installs it.
 *
 * `MECO_WITHOUT` switches parts off as if they were missing: a comma-separated
 * list of part names, or `all` (`MECO_WITHOUT=all deno task test` is the test
 * run of a bare machine). `MECO_NATIVE=0` switches oneDNN off too.
 *
 * @example
 * ```ts
 * import { optionalPart } from "./optional_parts.ts";
 * const onednn = optionalPart("onednn");
 * if (!onednn.available) console.log(`${onednn.reason}; install: ${onednn.install}`);
 * ```
 *
 * @module
 */

/** Names of the optional parts. */
export const OPTIONAL_PART_NAMES = ["onednn", "fashion-mnist", "jupyter", "slurm", "chromium"] as const;

/** One optional part's name. */
export type OptionalPartName = typeof OPTIONAL_PART_NAMES[number];

/** Whether an optional part is there, and how to get it. */
export interface OptionalPart {
  /** The part. */
  name: OptionalPartName;
  /** What it gives. */
  gives: string;
  /** True when installed and not switched off. */
  available: boolean;
  /** Why it is not available (empty when it is). */
  reason: string;
  /** The command that installs it. */
  install: string;
}

interface PartSpec {
  gives: string;
  install: string;
  /** Files of which at least one must exist. */
  files: () => string[];
}

const SPECS: Record<OptionalPartName, PartSpec> = {
  onednn: {
    gives: "native kernels and compiled training steps",
    install: "apt-get install libdnnl2",
    files: () => ["/usr/lib/x86_64-linux-gnu/libdnnl.so.2", "/usr/lib/aarch64-linux-gnu/libdnnl.so.2"],
  },
  "fashion-mnist": {
    gives: "the Fashion-MNIST data set",
    install: "apt-get install dataset-fashion-mnist",
    files: () => ["/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"],
  },
  jupyter: {
    gives: "notebook execution",
    install: "apt-get install jupyter-nbconvert python3-nbclient jupyter-client && deno jupyter --install",
    files: () => ["/usr/bin/jupyter-nbconvert", "/usr/bin/jupyter"],
  },
  chromium: {
    gives: "figures rendered to PNG",
    install: "apt-get install chromium",
    files: () => [env("MECO_CHROMIUM") ?? "", "/usr/bin/chromium", "/usr/bin/chromium-browser"].filter((f) => f),
  },
  slurm: {
    gives: "sweeps as Slurm job arrays tested on a single-node cluster",
    install: "apt-get install --no-install-recommends slurmctld slurmd slurm-client munge",
    files: () => ["/usr/sbin/slurmctld"],
  },
};

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no env permission
  }
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * The parts `MECO_WITHOUT` switches off.
 *
 * @throws {Error} naming an unknown part in `MECO_WITHOUT`
 */
export function switchedOff(): Set<OptionalPartName> {
  const raw = (env("MECO_WITHOUT") ?? "").split(",").map((s) => s.trim()).filter((s) => s);
  if (raw.includes("all")) return new Set(OPTIONAL_PART_NAMES);
  for (const r of raw) {
    if (!(OPTIONAL_PART_NAMES as readonly string[]).includes(r)) {
      throw new Error(`MECO_WITHOUT: unknown part "${r}" (expected all or ${OPTIONAL_PART_NAMES.join(", ")})`);
    }
  }
  const off = new Set(raw as OptionalPartName[]);
  if (env("MECO_NATIVE") === "0") off.add("onednn"); // the native kernels' own switch
  return off;
}

/** Whether the optional part `name` is available here (see the module documentation). */
export function optionalPart(name: OptionalPartName): OptionalPart {
  const spec = SPECS[name];
  const base = { name, gives: spec.gives, install: spec.install };
  if (switchedOff().has(name)) {
    const by = name === "onednn" && env("MECO_NATIVE") === "0" ? "MECO_NATIVE=0" : "MECO_WITHOUT";
    return { ...base, available: false, reason: `${name} switched off by ${by}` };
  }
  const files = spec.files();
  if (!files.some(exists)) return { ...base, available: false, reason: `${name} not installed (${files.join(", ")})` };
  return { ...base, available: true, reason: "" };
}

/** Every optional part, available or not. */
export function optionalParts(): OptionalPart[] {
  return OPTIONAL_PART_NAMES.map(optionalPart);
}

/** One line naming the missing parts, why, and how to install them; empty when all are there. */
export function missingPartsLine(parts: OptionalPart[] = optionalParts()): string {
  const missing = parts.filter((p) => !p.available);
  if (missing.length === 0) return "";
  return `skipped, needing parts that are missing: ${
    missing.map((p) => `${p.name} (${p.gives}; ${p.reason}; install: ${p.install})`).join("; ")
  }`;
}

/**
 * One line for `demo` and `repro` where oneDNN is missing: how much faster the
 * run would be with it (`deno task bench` with and without it on two cores:
 * LeNet-5 training step 51.8 vs 7.5 ms, DFME iteration 3260 vs 330 ms,
 * ResNet-18-8x step 875 vs 38 ms) and how to install it; empty when it is there.
 */
export function onednnAdvice(): string {
  const p = optionalPart("onednn");
  if (p.available) return "";
  return `oneDNN is missing (${p.reason}): this run uses the pure wasm kernels, about 7× slower for LeNet-5 ` +
    `training, 10× for a DFME iteration and 23× for ResNet-18-8x than with it; install it: ${p.install}`;
}
