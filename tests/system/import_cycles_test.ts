import assert from "node:assert/strict";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const LIB = normalize(join(dirname(fileURLToPath(import.meta.url)), "../../lib"));

/** Every .ts file under `dir`. */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...tsFiles(p));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** The local modules `file` imports or re-exports statically (type-only imports included; dynamic `import()` not). */
export function localImports(file: string, text: string): string[] {
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+["']([^"']+)["']/gms),
    ...text.matchAll(/^\s*import\s+["']([^"']+)["']/gm),
  ].map((m) => m[1]);
  return specs.filter((s) => s.startsWith(".")).map((s) => normalize(join(dirname(file), s)));
}

/** The import cycles of a module graph: each as the list of its modules, the first repeated at the end. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const seen = new Set<string>();
  const visit = (m: string) => {
    state.set(m, "open");
    stack.push(m);
    for (const d of graph.get(m) ?? []) {
      if (!graph.has(d)) continue;
      if (state.get(d) === "open") {
        const cycle = [...stack.slice(stack.indexOf(d)), d];
        const key = [...cycle.slice(0, -1)].sort().join(" ");
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push(cycle);
        }
      } else if (state.get(d) === undefined) visit(d);
    }
    stack.pop();
    state.set(m, "done");
  };
  for (const m of [...graph.keys()].sort()) if (state.get(m) === undefined) visit(m);
  return cycles;
}

Deno.test("findCycles finds a two-module and a three-module cycle, once each, and nothing in a tree", () => {
  const g = new Map([["a", ["b"]], ["b", ["a", "c"]], ["c", ["d"]], ["d", ["e"]], ["e", ["c"]], ["f", ["a"]]]);
  assert.deepEqual(findCycles(g), [["a", "b", "a"], ["c", "d", "e", "c"]]);
  assert.deepEqual(findCycles(new Map([["a", ["b", "c"]], ["b", ["c"]], ["c", []]])), []);
});

Deno.test("localImports reads static imports and re-exports, type-only ones too, across lines", () => {
  const text = `import * as tf from "@tensorflow/tfjs";\nimport {\n  a,\n  type B,\n} from "./x.ts";\n` +
    `import type { C } from "../y/z.ts";\nexport { d } from "./w.ts";\nexport * from "./v.ts";\nimport "./side.ts";\n` +
    `const m = await import("./dynamic.ts");\n`;
  assert.deepEqual(localImports("/r/lib/p/q.ts", text).sort(), [
    "/r/lib/p/side.ts",
    "/r/lib/p/v.ts",
    "/r/lib/p/w.ts",
    "/r/lib/p/x.ts",
    "/r/lib/y/z.ts",
  ]);
});

Deno.test("lib has no import cycle (type-only imports count: a cycle ties two modules into one)", () => {
  const graph = new Map<string, string[]>();
  for (const f of tsFiles(LIB)) graph.set(f, localImports(f, Deno.readTextFileSync(f)));
  const cycles = findCycles(graph).map((c) => c.map((m) => m.slice(LIB.length + 1)).join(" → "));
  assert.deepEqual(cycles, [], `import cycles in lib:\n${cycles.join("\n")}`);
});
