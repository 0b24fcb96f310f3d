/**
 * `lib/defenses`: one interface, {@linkcode Defense}, wrapping a victim's
 * prediction; `none`, output perturbations (RandP, MAD, GRAD), output
 * postprocessors (reverse sigmoid, high-confidence cutoff, rounding, top-1,
 * Gaussian noise) by config via {@linkcode buildDefense}. MeCo lives in lib/meco.
 *
 * @module
 */
export { buildDefense, type DefenseBuildOptions } from "./build.ts";
export type { Defense } from "./defense.ts";
export { outputDefense, type RowTransform } from "./output_defense.ts";
export * from "./output_math.ts";
export { buildSurrogate, DenseHead, fullCoefficients, type SurrogateSpec } from "./surrogate.ts";
export { undefended } from "./undefended.ts";
