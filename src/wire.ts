/**
 * Every JSON shape that crosses a process boundary: HTTP bodies and answers, /ws events and client
 * frames, /admin answers, and the variables an SDK sees. One declaration each: the daemon's producers
 * declare their outputs with these types (so a drift is a compile error) and the dashboard, the CLI
 * and the SDK read them from here. Type-only on purpose: importing it pulls nothing of the daemon
 * into the dashboard bundle or the SDK.
 */
import type { ErrorCode } from './errors.js';
import type { LogQuery, LogSearchResult } from './log-index/log-index.js';
import type { BackendHealth, LogEntry, Var, VarValue } from './model.js';
import type { Status, TreeNode as RuntimeTreeNode, TreeOptions } from './otp/types.js';
import type { HistoryEntry } from './variables/history.js';
import type { Labels } from './variables/labels.js';
import type { EffectiveVar, Override } from './variables/overrides.js';
import type { Target } from './variables/target.js';

export type { BackendHealth, ErrorCode, LogEntry, LogSearchResult, Var, VarValue };

// --- errors --------------------------------------------------------------------------------------

/** Every HTTP error answer, whatever the route (http/respond.ts). */
export interface ErrorAnswer {
  error: { code: ErrorCode; message: string };
}

// --- accounts and sessions -----------------------------------------------------------------------

/** `POST /api/users` and `POST /api/sessions` bodies. */
export interface Credentials {
  email: string;
  password: string;
}

/** `POST /api/users` → 201. */
export interface CreateUserAnswer {
  apiKey: string;
  email: string;
}

/** `POST /api/sessions` → 200. */
export interface SessionAnswer {
  token: string;
  apiKey: string;
  email: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

/** `GET /api/connect-info` → 200: where the session's games connect, as the dashboard's snippets show it. */
export interface ConnectInfoAnswer {
  /** The advertised host, else the bound host, else (bound to 0.0.0.0 or ::) the request's Host header's. */
  host: string;
  /** SDK TCP port: the advertised one, else the one the listener is bound to. */
  tcpPort: number;
  /** HTTP port of `GET /sdk`: the advertised one, else the one the listener is bound to. */
  httpPort: number;
  /** `ws://host:httpPort/sdk` for browser games (an IPv6 host in brackets); `wss://` when advertise.tls is true, or it is null and a proxy reports the dashboard request came over HTTPS. */
  sdkUrl: string;
  apiKey: string;
}

// --- variables -----------------------------------------------------------------------------------

/** `GET /api/vars` → 200, in first-seen order. */
export interface VarsAnswer {
  vars: Var[];
}

/** `PUT /api/vars/:name` body. */
export interface PutVarBody {
  value: VarValue;
  /** The var's type; else its current one, else inferred from the value. */
  type?: string | undefined;
}

/** `PUT /api/vars/:name` → 200: how many sockets got the change now, and whether it waits in the outbox. */
export interface VarDelivery {
  var: Var;
  delivered: number;
  buffered: boolean;
  /** Nodes that were sent the change but did not answer within the ack timeout (absent when all did). */
  unconfirmed?: number;
  /** §8: who the change is for (absent from daemons before overrides). */
  target?: Target;
  /** §8: devices in the target it waits for. */
  pending?: number;
  /** §8: the history entry that records it. */
  historyId?: string;
}

// --- logs ----------------------------------------------------------------------------------------

/** `GET /api/logs` query: the index's query without the API key, which the session implies. */
export type LogSearchQuery = Omit<LogQuery, 'apiKey'>;

// --- devices -------------------------------------------------------------------------------------

/** One verified socket, as the `device` event carries it. */
export interface DeviceInfo {
  /** Connection id: unique per socket. */
  id: string;
  apiKey: string;
  /** The name the SDK gave (`v:<apiKey>:<deviceId>`), or null for the original SDK. */
  deviceId: string | null;
  remoteAddress: string;
  /** Milliseconds since the epoch. */
  connectedAt: number;
  lastLineAt: number | null;
  linesIn: number;
  /** The daemon node holding the socket. */
  node: string;
}

/** A device as `GET /api/devices` lists it: without the key the session implies. */
export type Device = Omit<DeviceInfo, 'apiKey'>;

/** `GET /api/devices` → 200, oldest connection first. */
export interface DevicesAnswer {
  devices: Device[];
}

// --- health --------------------------------------------------------------------------------------

/** `GET /healthz` → 200. */
export interface HealthAnswer {
  status: 'ok' | 'degraded';
  node: string;
  uptimeS: number;
  backends: Record<string, BackendHealth>;
}

/** `GET /readyz` → 200 or 503. */
export interface ReadyAnswer {
  ready: boolean;
  backends: Record<string, BackendHealth>;
}

// --- /ws: events published on a key's channels and fanned out to its sockets ---------------------

/** Variables a device reported, or one a dashboard changed (`source: 'dashboard'`). */
export interface VarsEvent {
  type: 'vars';
  apiKey: string;
  deviceId: string | null;
  vars: Var[];
  source?: 'dashboard';
}

export interface LogsEvent {
  type: 'logs';
  apiKey: string;
  deviceId: string | null;
  logs: LogEntry[];
}

export interface DeviceEvent {
  type: 'device';
  event: 'connected' | 'disconnected';
  device: DeviceInfo;
}

/**
 * Where a dashboard change went on one node: written to `delivered` of its sockets there, or put in
 * the outbox (`buffered`) because no node had a socket of the key.
 */
export interface DeliveryEvent {
  type: 'delivery';
  /** The first of `names`, for a change of one variable. */
  name: string;
  names: string[];
  delivered: number;
  buffered: boolean;
  node: string;
}

/** A dashboard deleted a variable (`DELETE /api/vars/:name`): gone from the key's store. */
export interface VarDeletedEvent {
  type: 'var_deleted';
  apiKey: string;
  name: string;
  source: 'dashboard';
}

/** The outbox was written to sockets that came back. */
export interface OutboxFlushedEvent {
  type: 'outbox_flushed';
  names: string[];
  delivered: number;
}

/** What the daemon publishes on a key's pubsub channels (DESIGN.md §4). */
export type DashboardEvent = VarsEvent | LogsEvent | DeviceEvent | DeliveryEvent | OutboxFlushedEvent | VarDeletedEvent | VariablesEvent;

/**
 * A `delivery` event under the tag it had before it got its own. /ws still sends it next to every
 * `delivery` for clients written against the old tag, and a node not yet upgraded still publishes it.
 * @deprecated read `delivery`; `var_delivery` now only names the answer to `set_var`.
 */
export interface LegacyDeliveryEvent extends Omit<DeliveryEvent, 'type'> {
  type: 'var_delivery';
}

// --- /ws: frames between one socket and the daemon -----------------------------------------------

/** Echoed in the answer so a client can match it to its request. */
export type FrameId = string | number;

/** The only frame a /ws client sends: what `PUT /api/vars/:name` does. */
export interface SetVarFrame {
  type: 'set_var';
  name: string;
  value: VarValue;
  varType?: string | undefined;
  id?: FrameId | undefined;
  /** §8: absent for every device, as `PUT /api/vars/:name`'s body. */
  target?: Target | { labels: string } | undefined;
}

/** The answer to one `set_var`, to its socket only. */
export interface SetVarAnswer extends VarDelivery {
  type: 'var_delivery';
  id?: FrameId;
  name: string;
}

/** Sent once the key's events flow to the socket: read the REST snapshot after it. */
export interface ReadyFrame {
  type: 'ready';
  apiKey: string;
  email: string;
}

/** A frame refused or a `set_var` that failed; `id` when the frame had a usable one. */
export interface ErrorFrame {
  type: 'error';
  code: ErrorCode;
  message: string;
  id?: FrameId;
}

/** Every frame the daemon sends on /ws. */
export type WsServerFrame = DashboardEvent | LegacyDeliveryEvent | SetVarAnswer | ReadyFrame | ErrorFrame;

/** Every frame a client may send on /ws. */
export type WsClientFrame = SetVarFrame;

// --- /admin --------------------------------------------------------------------------------------

export type NodeStatus = Status;

/**
 * One node of `GET /admin/tree`: the runtime's own tree node (src/otp stays free of the domain, so
 * the shape is declared there and followed here, `backoff` on supervisors and `backoffMs` on every
 * node included). http/admin.ts checks what it serves against this.
 */
export interface TreeNode extends Omit<RuntimeTreeNode, 'children'> {
  children?: TreeNode[];
}

/** `GET /admin/tree` query: `limit`, `depth`, and `expand` with `offset` to page one supervisor. */
export type TreeQuery = TreeOptions;

/** `POST /admin/kill` body. */
export interface KillBody {
  path: string;
  reason?: string | undefined;
  /** Under `serve --workers N`: the worker to kill in (1..N); absent, the one the request reached. */
  worker?: number | undefined;
}

/** `POST /admin/kill` → 200: the actor after the kill, and its supervisor without its subtree. */
export interface KillAnswer {
  node: TreeNode;
  supervisor: TreeNode | null;
}

// --- devices, overrides, strategies, history (DESIGN.md §8, §4) -----------------------------------
// The contract the daemon's routes, the dashboard and the CLI share for §8. Targets, overrides,
// strategies and history entries are the domain's own shapes (src/variables, type-only imports).

export type { Target } from './variables/target.js';
export type { Override, EffectiveVar } from './variables/overrides.js';
export type { Strategy } from './variables/strategies.js';
export type { HistoryEntry, HistoryAction, OverrideChange, StrategyChange, OverrideValue } from './variables/history.js';
export type { Labels } from './variables/labels.js';

/** One device of `GET /api/devices` (cluster-wide: online on any node, or seen within the remember window). */
export interface DeviceSummary {
  deviceId: string;
  labels: Labels;
  online: boolean;
  /** Milliseconds since the epoch: last verify, report or heartbeat. */
  lastSeen: number;
  lastAddress: string | null;
  /** True when the connection named no device and the id was made up for its lifetime. */
  generated: boolean;
  /** The strategy it runs: a name, "mixed" once edited, or null. */
  strategy: string | null;
  /** How many changes wait for it (derived from the overrides in effect and what it was last sent). */
  pendingCount: number;
}

/** `GET /api/devices` → 200, newest seen first. (`Device` above is the per-connection shape of the events.) */
export interface DeviceListAnswer {
  devices: DeviceSummary[];
}

/** `GET /api/devices/:deviceId` → 200; 404 when unknown. */
export interface DeviceAnswer extends DeviceSummary {
  vars: EffectiveVar[];
  pending: Array<{ name: string; value: string; type: string }>;
}

/** `PUT /api/vars/:name` body. */
export interface SetOverrideBody {
  value: VarValue;
  type?: string;
  /** Absent: every device. A selector string is accepted as `{"labels": "platform=android,build=1.4.*"}`. */
  target?: Target | { labels: string };
}

/** `PUT /api/vars/:name` → 200 (and the WebSocket's `set_var` answer's body). */
export interface SetOverrideAnswer {
  var: Var;
  target: Target;
  /** Online devices the change reached now. */
  delivered: number;
  /** Devices in the target that it waits for (offline, or not yet sent). */
  pending: number;
  /** Kept for older dashboards: true when no device got it now. */
  buffered: boolean;
  historyId: string;
  /** Nodes that did not answer within the ack timeout (absent when all did). */
  unconfirmed?: number;
}

/** `DELETE /api/vars/:name/override` body (optional) and answer. */
export interface ClearOverrideBody {
  target?: Target | { labels: string };
}
export interface ClearOverrideAnswer {
  name: string;
  target: Target;
  delivered: number;
  pending: number;
  historyId: string;
}

/** `GET /api/overrides` → 200. */
export interface OverridesAnswer {
  overrides: Override[];
}

/** A strategy as the API serves it. */
export interface StrategyAnswer {
  name: string;
  vars: Var[];
  version: number;
  updatedAt: number;
  updatedBy: string;
  /** Devices running it unchanged right now (online or remembered). */
  devices: number;
}
/** `GET /api/strategies` → 200. */
export interface StrategiesAnswer {
  strategies: StrategyAnswer[];
}
/** `POST /api/strategies` and `PUT /api/strategies/:name` body; `version` (optional on PUT) guards concurrent edits (409 when stale). */
export interface StrategyBody {
  name?: string;
  vars: Array<{ name: string; value: VarValue; type?: string }>;
  version?: number;
}
/** `POST /api/strategies/:name/apply` body and answer. */
export interface ApplyStrategyBody {
  target?: Target | { labels: string };
}
export interface ApplyStrategyAnswer {
  strategy: string;
  target: Target;
  delivered: number;
  pending: number;
  historyId: string;
}

/** `GET /api/history?limit=&before=` → 200, newest first. */
export interface HistoryAnswer {
  entries: HistoryEntry[];
}
/** `POST /api/history/:id/revert` and `POST /api/history/rollback {"to": id}` → 200: the new entry. */
export interface HistoryActionAnswer {
  entry: HistoryEntry;
  delivered: number;
  pending: number;
}

/** A change as it appears in a device's log timeline (`GET /api/logs?kind=change`; `kind` is "log" on game logs). */
export interface ChangeTimelineFields {
  kind: 'change';
  actor: string;
  action: string;
  name: string;
  before: string | null;
  after: string | null;
  /** The entry that made the change; null when a device got an override at connect (it was made while it was away). */
  historyId: string | null;
}

/** /ws events for §8 (beside vars, logs, device, delivery). */
export type VariablesEvent =
  | { type: 'overrides'; overrides: Override[] }
  | { type: 'strategies'; strategies: StrategyAnswer[] }
  | { type: 'history'; entry: HistoryEntry }
  | { type: 'device_state'; device: DeviceSummary };

/** A device came online, went offline (its presence lapsed, even on a node that died) or changed labels; the `GET /api/devices` shape. */
export type DeviceStateEvent = Extract<VariablesEvent, { type: 'device_state' }>;
