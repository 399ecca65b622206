/**
 * observerio's TypeScript SDK (`observerio/sdk`): a game connects to the daemon over TCP, streams its
 * variables and logs, declares its labels, and receives variable changes made on the dashboard. The
 * wire protocol is in docs/PROTOCOL.md; this SDK speaks the original protocol plus the optional device
 * id on `v:` and, when given labels, the devices extension's `d:` line (§13).
 */
export { connect, createClient, Client, varInputs } from './client.js';
export type { ChangeListener, ConnectOptions, ClientEvents, ClientState, LogFields, SdkLogger, VarChange, VarSpec, VarsInput } from './client.js';
export { SdkError, DAEMON_ERROR_CODES } from './errors.js';
export type { SdkErrorCode, DaemonErrorCode, LocalErrorCode } from './errors.js';
export { DEFAULT_BACKOFF, Backoff } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export type { SdkClock, TimerHandle } from './clock.js';
export {
  checkDeviceLabels,
  decodeLabelsLine,
  decodeServerLine,
  encodeLabels,
  encodeLogs,
  encodeVars,
  encodeVerify,
  inferType,
  toWireVar,
  typedValue,
} from './codec.js';
export type { Labels, LabelsLine, LogRecord, ServerLine, Var, VarInput, VarType, VarValue } from './codec.js';
