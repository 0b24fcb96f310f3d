/**
 * `lib/victim`: the victim as attacks see it. A {@linkcode BlackBox} holds the
 * victim's `Defense` (lib/defenses: a defense built by `buildDefense`, or the
 * undefended model via `undefended(model)`), answers soft or hard labels,
 * counts every queried image and enforces the query budget. The victim itself
 * is unreachable from outside.
 *
 * @example
 * ```ts ignore
 * import { undefended } from "../defenses/mod.ts";
 * import { BlackBox } from "./mod.ts";
 * const bb = new BlackBox(undefended(victim), { imageShape: [28, 28, 1], numClasses: 10, budget: 2_000_000 });
 * ```
 *
 * @module
 */
export { type Answer, BlackBox, type BlackBoxOptions, type LabelMode } from "./black_box.ts";
export { detach } from "./detach.ts";
export { BudgetExceededError, DefenseOutputError, QueryShapeError } from "./errors.ts";
