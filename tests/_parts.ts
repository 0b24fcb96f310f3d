/**
 * Tests that need an optional part (see lib/system/optional_parts.ts) are
 * skipped only where that part is missing; where it is there, they run and
 * must find it working.
 */
import assert from "node:assert/strict";
import { optionalPart } from "../lib/system/optional_parts.ts";
import { runtime } from "../lib/backend/native/runtime.ts";

/** oneDNN: whether libdnnl2 is installed and not switched off. */
export const onednn = optionalPart("onednn");

/**
 * A test of the oneDNN path: skipped where oneDNN is missing; where it is
 * installed, oneDNN must have loaded (checked before `fn` runs).
 */
export function nativeTest(name: string, fn: () => void | Promise<void>): void {
  Deno.test({
    name,
    ignore: !onednn.available,
    fn: () => {
      assert.ok(runtime.dnnl !== undefined, "libdnnl2 is installed, so oneDNN must load");
      return fn();
    },
  });
}
