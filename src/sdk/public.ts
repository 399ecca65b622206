/**
 * What both SDK entries (index.ts for Node, browser.ts for browsers) export beside their own
 * `Client`, `connect` and `createClient`: one list, so the two entries cannot drift apart.
 */
export { ClientBase, varInputs } from './client.js';
export type { ChangeListener, ConnectOptions, ClientEvents, ClientState, LogFields, SdkLogger, VarChange, VarSpec, VarsInput } from './client.js';
export type { WebSocketConstructor, WebSocketLike } from './transport.js';
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
