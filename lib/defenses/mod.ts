/**
 * `lib/defenses`: one contract, {@linkcode Defense}, for a victim's answers
 * (what a `BlackBox` holds), and one builder, {@linkcode buildDefense}, from a
 * config entry: `none` ({@linkcode undefended}), MeCo ({@linkcode mecoDefense},
 * around its trained target and perturbation network), output perturbations
 * (RandP, MAD, GRAD) and output postprocessors (reverse sigmoid,
 * high-confidence cutoff, rounding, top-1, Gaussian noise).
 *
 * @module
 */
export { buildDefense, type DefenseBuildOptions } from "./build.ts";
export type { Defense } from "./defense.ts";
export { mecoDefense, type MecoDeployOptions, type MecoModels, perturbInput } from "./meco.ts";
export { outputDefense, type RowTransform } from "./output_defense.ts";
export * from "./output_math.ts";
export { buildSurrogate, DenseHead, fullCoefficients, type SurrogateSpec } from "./surrogate.ts";
export { undefended } from "./undefended.ts";
