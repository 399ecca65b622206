/**
 * The SDK's one error type. Every failure a game can see carries a stable `code`: either the daemon's
 * own `e:<code>:<message>` code (so games can branch on `unknown_api_key` whichever side found it) or
 * one of the SDK's local codes for sockets, timeouts and bad arguments.
 */

/** Codes the daemon sends as `e:<code>:<message>` (docs/PROTOCOL.md §6). */
export const DAEMON_ERROR_CODES = [
  'unknown_command',
  'bad_api_key',
  'unknown_api_key',
  'not_verified',
  'key_mismatch',
  'bad_device_id',
  'bad_base64',
  'bad_json',
  'bad_shape',
  'line_too_long',
  'too_many_errors',
  'verify_timeout',
  'server_busy',
  'internal',
  'unavailable',
  'too_many_vars',
  'too_many_new_vars',
  'too_many_connections',
  'rate_limited',
] as const;
export type DaemonErrorCode = (typeof DAEMON_ERROR_CODES)[number];

/** Codes the SDK raises itself. */
export type LocalErrorCode =
  /** An option passed to connect() is out of range. */
  | 'bad_option'
  /** The `labels` given to connect() or setLabels() break a rule of docs/PROTOCOL.md §13. */
  | 'bad_labels'
  /** setVar/setVars got a name, type or value the daemon would reject. */
  | 'bad_var'
  /** A log entry could not be serialized or is too large for one line; it was dropped. */
  | 'bad_log'
  /** Nothing listens on host:port. */
  | 'connection_refused'
  /** Any other socket error (DNS, reset, unreachable, ...); `cause` holds the Node error. */
  | 'connection_error'
  /** No `OK` within connectTimeoutMs (the original daemon never answers an unknown key). */
  | 'connect_timeout'
  /** The daemon closed or reset the connection. */
  | 'connection_lost'
  /** The client was closed. */
  | 'closed'
  /** The daemon sent a line the SDK cannot decode. */
  | 'bad_server_line'
  /** A listener of this client threw; the SDK carried on. */
  | 'listener_error';

/**
 * Known codes, plus any string: a newer daemon may add codes, and a game must still get them.
 * The `string & {}` keeps editor completion for the known ones.
 */
export type SdkErrorCode = DaemonErrorCode | LocalErrorCode | (string & {});

export class SdkError extends Error {
  override name = 'SdkError';
  /** True when the daemon sent this error as an `e:` line. */
  readonly fromDaemon: boolean;

  constructor(
    readonly code: SdkErrorCode,
    message: string,
    options: { cause?: unknown; fromDaemon?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.fromDaemon = options.fromDaemon ?? false;
  }
}

/** Maps a Node socket error to an SdkError. */
export function socketError(err: Error & { code?: string }, where: string): SdkError {
  if (err.code === 'ECONNREFUSED') return new SdkError('connection_refused', `connection refused by ${where}`, { cause: err });
  // A reset is how a daemon that closes with unread data in its buffer looks; to a game it is the same loss.
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return new SdkError('connection_lost', `${where} closed the connection (${err.code})`, { cause: err });
  return new SdkError('connection_error', `connection to ${where} failed: ${err.message}`, { cause: err });
}
