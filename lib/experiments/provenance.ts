/**
 * Provenance recorded with every artifact: the commit (and whether the tree
 * had uncommitted changes) and the command that produced it.
 *
 * @module
 */

/** The git commit of the working tree, suffixed "+dirty" when it has uncommitted changes; "unknown" outside git. */
export async function gitCommit(): Promise<string> {
  const run = async (args: string[]) => {
    const out = await new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  };
  try {
    const head = await run(["rev-parse", "HEAD"]);
    if (head === undefined) return "unknown";
    const status = await run(["status", "--porcelain", "--untracked-files=no", "--", "lib", "configs"]);
    return status ? `${head}+dirty` : head;
  } catch {
    return "unknown";
  }
}

/** The command line of this process, as a person would retype it. */
export function commandLine(): string {
  const script = Deno.mainModule.startsWith("file://")
    ? new URL(Deno.mainModule).pathname.replace(Deno.cwd() + "/", "")
    : Deno.mainModule;
  return ["deno run -A", script, ...Deno.args].join(" ");
}
