/**
 * The error catalog: every error a client can see has a stable code here. The TCP protocol answers
 * `e:<code>:<message>`; the HTTP API answers `{ "error": { "code", "message" } }` with the status below.
 */
export const ERRORS = {
  // TCP protocol (DESIGN.md §2)
  unknown_command: { status: 400, message: 'unknown command; expected v:, l: or i:' },
  bad_api_key: { status: 400, message: 'API key must be exactly 12 characters of [A-Za-z0-9]' },
  unknown_api_key: { status: 401, message: 'API key is not registered' },
  not_verified: { status: 401, message: 'send v:<apiKey> before l: or i:' },
  key_mismatch: { status: 403, message: 'API key differs from the one this connection verified' },
  bad_device_id: { status: 400, message: 'device id must be 1-64 characters of [A-Za-z0-9._-]' },
  bad_base64: { status: 400, message: 'payload is not valid base64' },
  bad_json: { status: 400, message: 'payload is not valid JSON' },
  bad_shape: { status: 400, message: 'payload has the wrong shape' },
  line_too_long: { status: 413, message: 'line exceeds the maximum length' },
  too_many_errors: { status: 429, message: 'too many protocol errors; closing' },
  verify_timeout: { status: 408, message: 'no v: line in time; closing' },
  server_busy: { status: 503, message: 'too many connections' },
  // Per-tenant limits (config `limits`): the line or connection is refused, the rest goes on.
  too_many_vars: { status: 429, message: 'the API key has its maximum number of variables; new variables refused' },
  too_many_new_vars: { status: 429, message: 'too many new variables for the API key this minute; new variables refused' },
  too_many_connections: { status: 429, message: 'too many connections for the API key or address; closing' },
  rate_limited: { status: 429, message: 'too many logs for the API key this second; logs dropped' },
  internal: { status: 500, message: 'internal error' },
  log_rejected: { status: 422, message: 'the log index refused this log; it is not stored' },
  // HTTP API
  bad_request: { status: 400, message: 'invalid request' },
  payload_too_large: { status: 413, message: 'request body too large' },
  unauthorized: { status: 401, message: 'missing or invalid credentials' },
  forbidden: { status: 403, message: 'forbidden' },
  not_found: { status: 404, message: 'not found' },
  email_taken: { status: 409, message: 'email already registered' },
  /** A stale edit: someone else changed it first (a strategy's version); re-read and retry. */
  conflict: { status: 409, message: 'changed by someone else in the meantime; re-read and retry' },
  too_many_requests: { status: 429, message: 'too many attempts; retry later' },
  unavailable: { status: 503, message: 'a backend is unavailable' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a catalog code; `message` adds detail to the catalog's text. */
export class ObserverioError extends Error {
  override name = 'ObserverioError';
  constructor(
    readonly code: ErrorCode,
    detail?: string,
  ) {
    super(detail ?? ERRORS[code].message);
  }
  get status(): number {
    return ERRORS[this.code].status;
  }
}

/** The protocol's error line, without the trailing newline; the message never contains a newline. */
export function protocolErrorLine(code: ErrorCode, detail?: string): string {
  const msg = (detail ?? ERRORS[code].message).replace(/[\r\n]+/g, ' ');
  return `e:${code}:${msg}`;
}
