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
