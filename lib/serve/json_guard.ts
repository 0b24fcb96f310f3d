/**
 * A bounded pre-scan of a JSON body while it arrives: it tracks the nesting
 * depth and counts the elements (array values and object members) without
 * building anything, so a body nested millions of levels deep, or holding
 * far more values than any valid request, is refused after its first chunk
 * instead of being read whole and handed to `JSON.parse`.
 *
 * The scan works on UTF-8 bytes: the structural characters `[ ] { } , "` and
 * `\` are ASCII, and no byte of a multi-byte UTF-8 sequence is ASCII, so a
 * byte-level scan that skips over strings sees exactly the JSON structure.
 * It does not validate the JSON (`JSON.parse` does that afterwards); it only
 * bounds what that parse may be asked to build.
 *
 * @module
 */
import { ApiError } from "./api_error.ts";

/** The bounds a {@linkcode JsonGuard} enforces. */
export interface JsonLimits {
  /** Most nesting levels (the top-level object is level 1). */
  maxDepth: number;
  /** Most elements: commas and opening brackets, an upper bound on the values beyond the first. */
  maxElements: number;
}

const QUOTE = 0x22, BACKSLASH = 0x5c, COMMA = 0x2c;
const OPEN_ARRAY = 0x5b, CLOSE_ARRAY = 0x5d, OPEN_OBJECT = 0x7b, CLOSE_OBJECT = 0x7d;

/**
 * Incremental depth and element counter; {@linkcode JsonGuard.feed} each
 * chunk as it arrives. Throws an {@linkcode ApiError} (400 `json_too_deep`,
 * 413 `json_too_many_elements`) as soon as a bound is crossed.
 *
 * @example
 * ```ts
 * import { JsonGuard } from "./json_guard.ts";
 * const g = new JsonGuard({ maxDepth: 3, maxElements: 10 });
 * g.feed(new TextEncoder().encode('{"a": [1, 2, "[[[["]}'));
 * g.depth; // 0
 * ```
 */
export class JsonGuard {
  readonly #limits: JsonLimits;
  #depth = 0;
  #elements = 0;
  #inString = false;
  #escaped = false;

  /**
   * A guard for one body.
   *
   * @param limits the depth and element bounds
   */
  constructor(limits: JsonLimits) {
    this.#limits = limits;
  }

  /** Current nesting depth (0 outside every container). */
  get depth(): number {
    return this.#depth;
  }

  /** Elements counted so far. */
  get elements(): number {
    return this.#elements;
  }

  /** Scans the next chunk of the body. */
  feed(chunk: Uint8Array): void {
    const { maxDepth, maxElements } = this.#limits;
    let depth = this.#depth, elements = this.#elements, inString = this.#inString, escaped = this.#escaped;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (inString) {
        if (escaped) escaped = false;
        else if (b === BACKSLASH) escaped = true;
        else if (b === QUOTE) inString = false;
        continue;
      }
      if (b === QUOTE) inString = true;
      else if (b === OPEN_ARRAY || b === OPEN_OBJECT) {
        if (++depth > maxDepth) {
          throw new ApiError(
            400,
            "json_too_deep",
            `request body: JSON nested deeper than ${maxDepth} levels; a prediction request needs at most 5`,
            { max_depth: maxDepth },
          );
        }
        elements++;
      } else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) {
        if (depth > 0) depth--;
      } else if (b === COMMA) elements++;
      else continue;
      if (elements > maxElements) {
        throw new ApiError(
          413,
          "json_too_many_elements",
          `request body: more than ${maxElements} JSON elements, more than a full batch of images holds`,
          { max_elements: maxElements },
        );
      }
    }
    this.#depth = depth;
    this.#elements = elements;
    this.#inString = inString;
    this.#escaped = escaped;
  }
}

/**
 * The bounds for prediction requests of `maxBatch` images of shape
 * `[h, w, c]`: depth 5 is what nested arrays need (object, batch, image,
 * row, pixel), allowed with slack; the element bound is the number of values
 * in a full batch sent as nested arrays, plus slack for the few other fields.
 */
export function predictLimits(imageShape: readonly [number, number, number], maxBatch: number): JsonLimits {
  const [h, w, c] = imageShape;
  const perImage = 1 + h + h * w + h * w * c;
  return { maxDepth: 8, maxElements: 2 + maxBatch * perImage + 64 };
}
