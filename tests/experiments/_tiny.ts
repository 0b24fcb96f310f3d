/**
 * Tiny experiment configs and a fresh cell cache for the runner's end-to-end tests: a LeNet-5 victim trained for one
 * epoch on 600 MNIST images and a DFME attack of a few hundred queries (seconds per cell).
 */

/** What differs between the tiny configs. */
export interface TinyConfig {
  name: string;
  description: string;
  /** Seeds (default [0]). */
  seeds?: number[];
  /** Extra defense entries after `type: none`, as YAML flow mappings. */
  defenses?: string[];
  /** DFME's query budget. */
  budget: number;
  evalEvery: number;
  checkpointEvery: number;
  /** Test images the victim and clone are evaluated on. */
  testSubset: number;
  /** Results folder (`output.dir`); the runner's default where absent. */
  out?: string;
}

/** The YAML of a tiny experiment (DFME iterations of 32 · (1 + 1 + 5) = 224 queries). */
export function tinyConfig(c: TinyConfig): string {
  const defenses = ["type: none", ...(c.defenses ?? [])].map((d) => `  - ${d}`).join("\n");
  return `
name: ${c.name}
description: ${c.description}
seeds: [${(c.seeds ?? [0]).join(", ")}]
dataset: { name: mnist, train_subset: 600 }
victim:
  arch: lenet5
  train: { epochs: 1, batch_size: 64, optimizer: adam, lr: 0.002 }
defenses:
${defenses}
attacks:
  - { type: dfme, clone_arch: lenet5, budget: ${c.budget}, batch_size: 32, gen_width: 4, nz: 16, eval_every: ${c.evalEvery}, checkpoint_every: ${c.checkpointEvery} }
eval: { test_subset: ${c.testSubset} }
${c.out === undefined ? "" : `output: { dir: ${c.out} }\n`}profiles: { paper: {}, local: {}, smoke: {} }
`;
}

/**
 * Runs `fn` with MECO_CACHE_DIR set to a fresh empty folder and a fresh results folder, restoring the variable and
 * removing both after.
 */
export async function withFreshCache<T>(fn: (cache: string, out: string) => Promise<T>): Promise<T> {
  const cache = await Deno.makeTempDir({ prefix: "meco-cache-" });
  const out = await Deno.makeTempDir({ prefix: "meco-results-" });
  const old = Deno.env.get("MECO_CACHE_DIR");
  Deno.env.set("MECO_CACHE_DIR", cache);
  try {
    return await fn(cache, out);
  } finally {
    if (old === undefined) Deno.env.delete("MECO_CACHE_DIR");
    else Deno.env.set("MECO_CACHE_DIR", old);
    await Deno.remove(cache, { recursive: true });
    await Deno.remove(out, { recursive: true });
  }
}
