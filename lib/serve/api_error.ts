/**
 * Errors the API answers with: an HTTP status, a stable machine-readable
 * code and a message naming the fault, sent as
 * `{"error": {"code": …, "message": …}}`.
 *
 * @module
 */

/** The error codes of the API. */
export type ApiErrorCode =
  | "missing_key"
  | "unknown_key"
  | "revoked_key"
  | "budget_exceeded"
  | "unsupported_media_type"
  | "body_too_large"
  | "batch_too_large"
  | "malformed_json"
  | "json_too_deep"
  | "json_too_many_elements"
  | "malformed_base64"
  | "invalid_request"
  | "wrong_shape"
  | "wrong_channels"
  | "empty_batch"
  | "non_finite"
  | "out_of_range"
  | "not_found"
  | "method_not_allowed"
  | "client_aborted"
  | "internal";

/** A request the API refuses (4xx) or failed to answer (5xx). */
export class ApiError extends Error {
  /**
   * @param status HTTP status
   * @param code machine-readable code
   * @param message what is wrong, naming the field or header at fault
   * @param extra further fields of the error object (e.g. the remaining budget)
   */
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The JSON response. */
  toResponse(headers: HeadersInit = {}): Response {
    return Response.json({ error: { code: this.code, message: this.message, ...this.extra } }, {
      status: this.status,
      headers,
    });
  }
}
