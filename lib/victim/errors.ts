/**
 * Typed errors raised by the {@linkcode BlackBox}.
 *
 * @module
 */

/** A query that would take the black box past its query budget; nothing was counted or answered. */
export class BudgetExceededError extends Error {
  /**
   * An error whose message gives the queries used, asked for and remaining.
   *
   * @param used queries answered so far
   * @param requested images in the refused query
   * @param budget the black box's query budget
   */
  constructor(readonly used: number, readonly requested: number, readonly budget: number) {
    super(
      `query budget exceeded: ${used} of ${budget} queries used, this query asks for ${requested} more ` +
        `(${budget - used} remaining)`,
    );
    this.name = "BudgetExceededError";
  }
}

/** A query whose input is not an image batch of the black box's declared shape. */
export class QueryShapeError extends Error {
  /**
   * An error whose message gives the accepted shape and what was passed.
   *
   * @param expected the accepted shape, e.g. "[n, 28, 28, 1] float32 with n ≥ 1"
   * @param found what was passed
   */
  constructor(readonly expected: string, readonly found: string) {
    super(`black-box query: expected images of shape ${expected}, found ${found}`);
    this.name = "QueryShapeError";
  }
}

/** The victim's defense (or undefended model) answered a query with output of the wrong shape. */
export class DefenseOutputError extends Error {
  /**
   * An error whose message gives the returned and the expected shape.
   *
   * @param expected the expected output shape
   * @param found the shape returned
   */
  constructor(readonly expected: string, readonly found: string) {
    super(`black-box victim returned ${found}, expected probabilities of shape ${expected}`);
    this.name = "DefenseOutputError";
  }
}
