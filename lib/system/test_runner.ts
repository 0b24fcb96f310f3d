/**
 * `deno task test`: runs `deno test -A` (on `tests/`, or on the paths and
 * flags given) and then prints one line naming the optional parts that were
 * missing, so the tests that needed them were skipped, with why and the
 * command that installs each. Exits with `deno test`'s status.
 *
 * @example
 * ```sh
 * deno task test                          # the whole suite
 * deno task test tests/backend/           # one folder
 * MECO_WITHOUT=all deno task test         # as on a bare machine
 * ```
 *
 * @module
 */
import { missingPartsLine, optionalParts } from "./optional_parts.ts";

if (import.meta.main) {
  const parts = optionalParts(); // also checks MECO_WITHOUT before anything runs
  const args = Deno.args.length > 0 ? Deno.args : ["tests/"];
  const child = new Deno.Command(Deno.execPath(), { args: ["test", "-A", ...args], stdin: "null" }).spawn();
  const { code } = await child.status;
  const line = missingPartsLine(parts);
  console.log(line === "" ? "optional parts: all installed, nothing skipped for want of one" : line);
  Deno.exit(code);
}
