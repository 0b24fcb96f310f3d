/**
 * The documentation examples as tests: `deno test --doc` over `lib/` (each
 * TypeScript example in a JSDoc comment is type-checked and run; those marked
 * `ignore` are not). Deno's doc tests import every export of an example's
 * module into the example, used or not (deno issue 26900), which this
 * project's `noUnusedLocals` / `noUnusedParameters` turn into errors; so the
 * examples are checked under a copy of deno.json with those two options off
 * (everything else, the import map included, as in deno.json). The copy is a
 * hidden file beside deno.json, removed afterwards. Part of `deno task check`.
 *
 * @example
 * ```sh
 * deno run -A lib/system/doc_tests.ts             # every example under lib/
 * deno run -A lib/system/doc_tests.ts lib/report/ # one folder
 * ```
 *
 * @module
 */
import { REPO_ROOT } from "../experiments/paths.ts";

/** deno.json with the options that reject the doc tests' injected imports turned off. */
export function docTestConfig(denoJson: Record<string, unknown>): Record<string, unknown> {
  const compilerOptions = { ...(denoJson.compilerOptions as Record<string, unknown> | undefined) };
  compilerOptions.noUnusedLocals = false;
  compilerOptions.noUnusedParameters = false;
  return { ...denoJson, compilerOptions };
}

if (import.meta.main) {
  const config = `${REPO_ROOT}.deno.doctests.json`;
  const denoJson = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`));
  await Deno.writeTextFile(config, JSON.stringify(docTestConfig(denoJson), null, 2));
  let code = 1;
  try {
    const paths = Deno.args.length > 0 ? Deno.args : ["lib/"];
    const child = new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", "--doc", "--config", config, ...paths],
      cwd: REPO_ROOT,
      stdin: "null",
    }).spawn();
    code = (await child.status).code;
  } finally {
    await Deno.remove(config).catch(() => {});
  }
  Deno.exit(code);
}
