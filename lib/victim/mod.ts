/**
 * `lib/victim`: the victim as attacks see it. A {@linkcode BlackBox} wraps a
 * prediction function (an undefended model via {@linkcode undefendedOracle},
 * or a defense), answers soft or hard labels, counts every queried image and
 * enforces the query budget. The victim itself is unreachable from outside.
 *
 * @example
 * ```ts ignore
 * import { BlackBox, undefendedOracle } from "./mod.ts";
 * const bb = new BlackBox(undefendedOracle(victim), { imageShape: [28, 28, 1], numClasses: 10, budget: 2_000_000 });
 * ```
 *
 * @module
 */
export { type Answer, BlackBox, type BlackBoxOptions, type LabelMode, type Oracle } from "./black_box.ts";
export { detach } from "./detach.ts";
export { BudgetExceededError, OracleOutputError, QueryShapeError } from "./errors.ts";
export { undefendedOracle } from "./undefended.ts";
