/**
 * What this machine has: the optional parts of an installation (oneDNN,
 * Fashion-MNIST, Jupyter, Chromium), whether each is there, and how to install it.
 *
 * @module
 */
export * from "./optional_parts.ts";
