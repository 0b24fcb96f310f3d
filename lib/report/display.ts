/**
 * Rich display for the Deno Jupyter kernel: objects carrying
 * `Symbol.for("Jupyter.display")` render as the MIME bundle they return.
 *
 * @module
 */

/** A MIME bundle: MIME type → content. */
export type MimeBundle = Record<string, unknown>;

/** Something the Deno kernel displays as `bundle`. */
export interface Displayable {
  /** The Deno kernel's display hook. */
  [key: symbol]: () => MimeBundle;
}

/** Wraps a MIME bundle so that a notebook cell shows it. */
export function display(bundle: MimeBundle): Displayable {
  return { [Symbol.for("Jupyter.display")]: () => bundle };
}

/**
 * Shows `d` now: inside the Deno Jupyter kernel through `Deno.jupyter.display`
 * (a display message sent while the cell runs, which nbconvert never misses,
 * unlike a cell's trailing value), elsewhere as its text on stdout.
 *
 * @example
 * ```ts ignore
 * await show(tableDisplay(report));
 * ```
 */
export async function show(d: Displayable): Promise<void> {
  const bundle = d[Symbol.for("Jupyter.display")]();
  let kernel: { display(obj: unknown, options?: { raw?: boolean }): Promise<void> } | undefined;
  try {
    kernel = (Deno as unknown as { jupyter?: typeof kernel }).jupyter;
  } catch {
    kernel = undefined; // outside the kernel, reading Deno.jupyter throws
  }
  if (kernel !== undefined && typeof kernel.display === "function") await kernel.display(bundle, { raw: true });
  else console.log(String(bundle["text/plain"] ?? JSON.stringify(bundle)));
}
