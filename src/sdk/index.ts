/**
 * observerio's TypeScript SDK (`observerio/sdk`): a game connects to the daemon over TCP, streams its
 * variables and logs, and receives variable changes made on the dashboard. The wire protocol is in
 * docs/PROTOCOL.md; this SDK speaks only the original protocol plus the optional device id on `v:`.
 */
export { connect, Client } from './client.js';
export type { ConnectOptions, ClientEvents, ClientState, LogFields, SdkLogger, VarChange } from './client.js';
export { SdkError, DAEMON_ERROR_CODES } from './errors.js';
export type { SdkErrorCode, DaemonErrorCode, LocalErrorCode } from './errors.js';
export { DEFAULT_BACKOFF, Backoff } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export type { SdkClock, TimerHandle } from './clock.js';
export {
  decodeServerLine,
  encodeLogs,
  encodeVars,
  encodeVerify,
  inferType,
  toWireVar,
  typedValue,
} from './codec.js';
export type { LogRecord, ServerLine, Var, VarInput, VarType, VarValue } from './codec.js';
