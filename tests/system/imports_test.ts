import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), "../.."));
const LIB = join(ROOT, "lib");
const BACKEND = join(LIB, "backend");
const NATIVE = join(BACKEND, "native");

/** Every file under `dir` whose name ends with `ext`. */
function filesUnder(dir: string, ext: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...filesUnder(p, ext));
    else if (e.isFile && e.name.endsWith(ext)) out.push(p);
  }
  return out;
}

/**
 * The module specifiers `text` imports: static imports and re-exports (type-only ones too, across lines),
 * side-effect imports, and dynamic `import()` of a string literal.
 */
export function importSpecifiers(text: string): string[] {
  return [
    ...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+["']([^"']+)["']/gms),
    ...text.matchAll(/^\s*import\s+["']([^"']+)["']/gm),
    ...text.matchAll(/\bimport\s*\(\s*["'`]([^"'`]+)["'`]\s*\)/g),
  ].map((m) => m[1]);
}

/**
 * Whether `specifier`, imported by the module at `from`, names a module under
 * lib/backend/native: a relative specifier resolved against `from`'s directory,
 * a file URL, or any other specifier that spells the path.
 */
export function importsNative(from: string, specifier: string): boolean {
  let path: string | undefined;
  if (specifier.startsWith(".")) path = normalize(join(dirname(from), specifier));
  else if (specifier.startsWith("file:")) path = normalize(fileURLToPath(specifier));
  else if (specifier.startsWith("/")) path = normalize(specifier);
  if (path !== undefined) return path === NATIVE || path.startsWith(`${NATIVE}/`);
  return /(^|\/)backend\/native(\/|$)/.test(specifier);
}

/** The source of a notebook's code cells, one string. */
function notebookCode(file: string): string {
  const nb = JSON.parse(Deno.readTextFileSync(file)) as { cells: { cell_type: string; source: string | string[] }[] };
  return nb.cells
    .filter((c) => c.cell_type === "code")
    .map((c) => (Array.isArray(c.source) ? c.source.join("") : c.source))
    .join("\n");
}

Deno.test("importSpecifiers reads static, type-only, multi-line, side-effect and dynamic imports", () => {
  const text = `import * as tf from "@tensorflow/tfjs";\nimport {\n  a,\n  type B,\n} from "./x.ts";\n` +
    `import type { C } from "../y/z.ts";\nexport { d } from "./w.ts";\nexport * from "./v.ts";\nimport "./side.ts";\n` +
    `const m = await import("./dynamic.ts");\n`;
  assert.deepEqual(importSpecifiers(text).sort(), [
    "../y/z.ts",
    "./dynamic.ts",
    "./side.ts",
    "./v.ts",
    "./w.ts",
    "./x.ts",
    "@tensorflow/tfjs",
  ]);
});

Deno.test("importsNative resolves relative paths against the importing module", () => {
  const attack = join(LIB, "attacks", "dfme.ts");
  assert.equal(importsNative(attack, "../backend/native/compiled_step.ts"), true);
  assert.equal(importsNative(attack, "../backend/mod.ts"), false);
  assert.equal(importsNative(join(LIB, "backend", "mod.ts"), "./native/mod.ts"), true);
  assert.equal(importsNative(join(LIB, "backend", "mod.ts"), "./init_backend.ts"), false);
  assert.equal(importsNative(join(ROOT, "notebooks", "a.ipynb"), "../lib/backend/native/runtime.ts"), true);
  assert.equal(importsNative(join(ROOT, "notebooks", "a.ipynb"), "../lib/backend/mod.ts"), false);
  assert.equal(importsNative(attack, `file://${NATIVE}/dnnl.ts`), true);
  assert.equal(importsNative(attack, "jsr:@x/backend/native/y"), true);
  assert.equal(importsNative(attack, "@tensorflow/tfjs-backend-wasm"), false);
});

Deno.test("only lib/backend imports lib/backend/native: lib reaches it through lib/backend/mod.ts, notebooks not at all", () => {
  const offenders: string[] = [];
  const check = (file: string, text: string) => {
    for (const s of importSpecifiers(text)) {
      if (importsNative(file, s)) offenders.push(`${relative(ROOT, file)} imports ${s}`);
    }
  };
  for (const f of filesUnder(LIB, ".ts")) {
    if (!f.startsWith(`${BACKEND}/`)) check(f, Deno.readTextFileSync(f));
  }
  for (const f of filesUnder(join(ROOT, "notebooks"), ".ipynb")) check(f, notebookCode(f));
  assert.deepEqual(offenders, [], `imports of lib/backend/native outside lib/backend:\n${offenders.join("\n")}`);
});
