/**
 * The SDK client a game holds: one connection to the daemon (TCP or WebSocket, through the transport
 * seam of transport.ts) that verifies the API key, declares the device's labels, streams variables and
 * logs in batches, applies variable changes pushed from the dashboard (what the daemon sent last is the
 * effective value, DESIGN.md §8), and reconnects by itself (backoff with jitter) while keeping a bounded
 * queue of what the daemon has not seen yet. It imports no transport: the entry points (index.ts for
 * Node, browser.ts) hand it the one that fits, so the browser bundle holds no node:net.
 */
import { Backoff, backoffOptions, type BackoffOptions } from './backoff.js';
import { BoundedQueue } from './bounded-queue.js';
import { utf8Length } from './bytes.js';
import { systemClock, type SdkClock, type TimerHandle } from './clock.js';
import {
  DEFAULT_MAX_LINE_BYTES,
  EMPTY_ARRAY_B64,
  checkApiKey,
  checkDeviceId,
  checkDeviceLabels,
  decodeServerLine,
  encodeLogsJson,
  encodeLabels,
  encodePayload,
  encodeVerify,
  inferType,
  jsonBudget,
  toWireVar,
  typedValue,
  type Labels,
  type Var,
  type VarInput,
  type VarValue,
} from './codec.js';
import { TypedEmitter } from './emitter.js';
import { SdkError } from './errors.js';
import type { SdkTransport, TransportChoice, TransportEvents, WebSocketConstructor } from './transport.js';
import { varBoolean, varKind, varNumber } from '../model.js';

/** Where the SDK reports what it does; a pino logger fits. All methods are optional. */
export interface SdkLogger {
  debug?(msg: string): void;
  info?(msg: string): void;
  warn?(msg: string): void;
  error?(msg: string): void;
}

export interface ConnectOptions {
  /** Daemon host for TCP; default `127.0.0.1`. Not with `url`. */
  host?: string;
  /** Daemon TCP port; default 4040. Not with `url`. */
  port?: number;
  /**
   * Connect over a WebSocket instead of TCP: the daemon's `GET /sdk` on its HTTP port, e.g.
   * `ws://127.0.0.1:4000/sdk` (`wss://` behind a TLS terminator). The only transport in browsers;
   * everything else (verify, labels, reconnect, the offline queue, override wins) works the same.
   */
  url?: string;
  /**
   * The WebSocket class for `url`; default `globalThis.WebSocket` (browsers, Node 22+). On Node 20
   * pass the `ws` package's `WebSocket` class.
   */
  WebSocket?: WebSocketConstructor;
  /** The account's API key: exactly 12 characters of [A-Za-z0-9]. Checked before connecting. */
  apiKey: string;
  /**
   * Names this device (`v:<apiKey>:<deviceId>`, 1-64 characters of [A-Za-z0-9._-]). An extension:
   * leave it out with the original Elixir daemon, which does not answer such a line.
   */
  deviceId?: string;
  /**
   * The device's labels (`platform`, `build`, anything `k=v`; docs/PROTOCOL.md §13), so the dashboard
   * can target overrides at `platform=android,build=1.4.*`. Sent as a `d:` line after every `OK`,
   * before the variables. Checked here: a bad label throws SdkError `bad_labels`. A daemon without
   * the extension answers `e:unknown_command` once per connection; the SDK expects that and carries on.
   */
  labels?: Readonly<Record<string, string>>;
  /**
   * The game's own values, reported with the first `i:` line and readable with the getters at once,
   * before any connection: `{enemy_speed: 1.5, spawn_ms: {value: 800, type: 'float'}}` (or a Map or
   * an array of `{name, value, type?}`). A `type` given here sticks to the name (see {@link Client.setVar}).
   * A value the daemon sends wins over its default until the game sets the variable itself.
   */
  defaults?: VarsInput;
  /** Types declared per name without a default, e.g. `{spawn_ms: 'float'}`: they stick like a default's type. */
  types?: Readonly<Record<string, string>>;
  /**
   * Resolve connect() at once and connect in the background: a daemon that is down (or a key it
   * refuses) is retried with the reconnect backoff while the game runs on its defaults, and
   * connect() never rejects for it. Same as {@link createClient}. Needs `reconnect` (not `false`).
   * Default false: connect() resolves once verified and rejects if the first attempt fails.
   */
  background?: boolean;
  /** Logs per `l:` line; a full batch is sent at once. Default 100. */
  logBatchSize?: number;
  /** Longest a log waits for its batch to fill. Default 250 ms. */
  logIntervalMs?: number;
  /** Variable changes within this window go out in one `i:` line, latest value per name. Default 10 ms. */
  varsWindowMs?: number;
  /** Reconnection backoff, or `false` to give up when the connection drops. */
  reconnect?: Partial<BackoffOptions> | false;
  /** Logs kept while offline (or while the socket is backed up); beyond this the oldest are dropped and counted. Default 10000. */
  offlineLogLimit?: number;
  /** Longest from opening the socket to the daemon's `OK`. Default 10000 ms. */
  connectTimeoutMs?: number;
  /** Longest line sent or accepted; the daemon's default `tcp.maxLineBytes`. Default 1 MiB. */
  maxLineBytes?: number;
  /**
   * When > 0, a connection that sent nothing for this long sends an empty log batch (`l:<apiKey>:W10=`)
   * so the daemon's idle timeout does not close it. Default 0 (off).
   */
  heartbeatMs?: number;
  /**
   * Confirm a dashboard change by sending the new value back in the next `i:` line (only when it
   * differs from what this client had), and after a reconnect re-send the current values, the
   * daemon's included. For daemons without overrides (the original one, this one before DESIGN.md §8),
   * where it keeps the stored value equal to the game's when a re-sent variable and a buffered
   * dashboard change cross after a reconnect.
   *
   * When false, the SDK reports only the game's own values (defaults and setVar) and never echoes the
   * daemon's: a daemon with overrides keeps reports as "the game's value" and re-sends the override
   * after a report that differs (override wins), so an echo would make the override look like the
   * game's value and "back to the game's value" would restore the override.
   *
   * Default: true, unless `defaults` or `labels` are given (a game written for overrides), then false.
   */
  confirmRemoteVars?: boolean;
  logger?: SdkLogger;
  /** Time source for timeouts, windows and backoff; default the real clock. */
  clock?: SdkClock;
  /** Uniform in [0, 1) for the backoff jitter; default Math.random. */
  random?: () => number;
}

/** A variable's value, or a value with its type (`{value: 800, type: 'float'}`). */
export type VarSpec = VarValue | { value: VarValue; type?: string };

/**
 * Several variables: an object or Map from name to value (or `{value, type}`), or an array of
 * `{name, value, type?}`.
 */
export type VarsInput = readonly VarInput[] | Readonly<Record<string, VarSpec>> | ReadonlyMap<string, VarSpec>;

/** Turns any VarsInput into `{name, value, type?}` items; throws bad_var for anything else. */
export function varInputs(input: VarsInput): VarInput[] {
  if (Array.isArray(input)) return input as VarInput[];
  const spec = (name: string, v: unknown): VarInput => {
    if (typeof v === 'object' && v !== null) {
      const { value, type } = v as { value?: unknown; type?: unknown };
      if (type !== undefined && typeof type !== 'string') throw new SdkError('bad_var', `variable ${name}: type must be a string`);
      return type === undefined ? { name, value: value as VarValue } : { name, value: value as VarValue, type };
    }
    return { name, value: v as VarValue };
  };
  if (input instanceof Map) return [...(input as ReadonlyMap<string, unknown>)].map(([name, v]) => spec(name, v));
  if (typeof input !== 'object' || input === null) throw new SdkError('bad_var', 'variables must be an array, an object or a Map');
  // Own keys only, so nothing on a prototype becomes a variable.
  return Object.keys(input).map((name) => spec(name, (input as Record<string, unknown>)[name]));
}

/** Called with the new effective value when the daemon changes one variable. */
export type ChangeListener = (value: VarValue, change: VarChange) => void;

/** Fields of a log entry besides its message. Anything else must be JSON-serializable. */
export interface LogFields {
  /** Default `info`. */
  level?: string;
  /** Default: now, in milliseconds since the epoch. */
  timestamp?: number;
  [field: string]: unknown;
}

/** One variable changed from the dashboard. */
export interface VarChange {
  name: string;
  type: string;
  /** Typed by `type`: integer/float → number, boolean → boolean, otherwise the string. */
  value: VarValue;
  /** The value as the wire carried it. */
  raw: string;
  /** The value this client had before, if any. */
  previous: VarValue | undefined;
}

export interface ClientEvents {
  /** Verified (again); after a reconnect, variables and queued logs have just been re-sent. */
  connected: [info: { reconnected: boolean }];
  /** A verified connection ended. `error` is null after close(). */
  disconnected: [info: { error: SdkError | null; willReconnect: boolean }];
  /** The next connection attempt is scheduled in `delayMs`; `attempt` counts from 1 since the last stable connection. */
  reconnecting: [info: { attempt: number; delayMs: number; error: SdkError }];
  /** Variables changed on the dashboard, in the order the daemon sent them. */
  vars: [changes: VarChange[]];
  /** A daemon `e:` line, a log that had to be dropped, a listener that threw, ... The client carries on. */
  error: [error: SdkError];
}

/** Where the client is: see the state diagram in docs/PROTOCOL.md §9. */
export type ClientState = 'connecting' | 'verifying' | 'online' | 'waiting' | 'closed';

interface Resolved {
  logBatchSize: number;
  logIntervalMs: number;
  varsWindowMs: number;
  reconnect: BackoffOptions | false;
  offlineLogLimit: number;
  connectTimeoutMs: number;
  maxLineBytes: number;
  heartbeatMs: number;
  confirmRemoteVars: boolean;
  background: boolean;
}

interface QueuedLog {
  json: string;
  bytes: number;
}

interface Waiter {
  resolve(): void;
  reject(err: SdkError): void;
}

/** Lets a closing client wait for the daemon's FIN, but not forever. */
const CLOSE_GRACE_MS = 2000;

/** Throws SdkError bad_option unless the option (or its default) is an integer >= min. */
export function intOption(name: string, v: number | undefined, def: number, min: number): number {
  const n = v ?? def;
  if (!Number.isInteger(n) || n < min) throw new SdkError('bad_option', `${name} must be an integer >= ${min}, got ${String(v)}`);
  return n;
}

/** Picks the transport for a client's options (the entry point's own rules); throws bad_option. */
export type TransportPicker = (options: ConnectOptions, maxLineBytes: number) => TransportChoice;

function resolveOptions(o: ConnectOptions): Resolved {
  const int = intOption;
  let reconnect: BackoffOptions | false = false;
  if (o.reconnect !== false) {
    try {
      reconnect = backoffOptions(o.reconnect ?? {});
    } catch (err) {
      throw new SdkError('bad_option', (err as Error).message);
    }
  }
  const maxLineBytes = int('maxLineBytes', o.maxLineBytes, DEFAULT_MAX_LINE_BYTES, 256);
  return {
    logBatchSize: int('logBatchSize', o.logBatchSize, 100, 1),
    logIntervalMs: int('logIntervalMs', o.logIntervalMs, 250, 0),
    varsWindowMs: int('varsWindowMs', o.varsWindowMs, 10, 0),
    reconnect,
    offlineLogLimit: int('offlineLogLimit', o.offlineLogLimit, 10_000, 0),
    connectTimeoutMs: int('connectTimeoutMs', o.connectTimeoutMs, 10_000, 1),
    maxLineBytes,
    heartbeatMs: int('heartbeatMs', o.heartbeatMs, 0, 0),
    confirmRemoteVars: o.confirmRemoteVars ?? (o.defaults === undefined && o.labels === undefined),
    background: o.background ?? false,
  };
}

/** connect()'s behaviour for any entry point's client: resolves once verified, or at once with `background`. */
export async function startClient<C extends ClientBase>(client: C, options: ConnectOptions): Promise<C> {
  if (options.background === true) client.startInBackground();
  else await client.start();
  return client;
}

/**
 * A connection to the daemon, over the transport its entry point picked. Create it with `connect`
 * or `createClient` (or `new Client(options)`) from `observerio/sdk`.
 */
export class ClientBase extends TypedEmitter<ClientEvents> {
  readonly apiKey: string;
  readonly deviceId: string | null;
  private readonly o: Resolved;
  private readonly clock: SdkClock;
  private readonly logger: SdkLogger;
  private readonly backoff: Backoff | null;
  private readonly where: string;
  private readonly transport: TransportChoice;
  private readonly jsonBudget: number;

  private st: ClientState = 'connecting';
  private socket: SdkTransport | null = null;
  private lastError: SdkError | null = null;
  private hasConnected = false;
  private onlineSince = 0;

  private connectTimer: TimerHandle | null = null;
  private retryTimer: TimerHandle | null = null;
  private varsTimer: TimerHandle | null = null;
  private logsTimer: TimerHandle | null = null;
  private heartbeatTimer: TimerHandle | null = null;

  /** Current (effective) value of every variable, set here or from the dashboard, in first-seen order. */
  private readonly vars = new Map<string, Var>();
  /** The game's own values: defaults and setVar, never the daemon's. Reported when confirmRemoteVars is off. */
  private readonly own = new Map<string, Var>();
  /** Types that stick to a name: from defaults, the `types` option or a setVar with a type. */
  private readonly declaredTypes = new Map<string, string>();
  private readonly changeListeners = new Map<string, Set<ChangeListener>>();
  private deviceLabels: Labels | null;
  /** The socket a `d:` line went out on whose `e:unknown_command` (an older daemon) is still expected. */
  private labelsProbe: SdkTransport | null = null;
  private started = false;
  /** Background start: a failed first attempt is retried like a reconnect instead of rejecting. */
  private retryFirst = false;
  /** Changes not yet sent on the current connection. */
  private readonly pendingVars = new Map<string, Var>();
  private readonly logs: BoundedQueue<QueuedLog>;
  private droppedOther = 0;

  private lastWrite: Promise<SdkError | null> = Promise.resolve(null);
  private lastWriteAt = 0;
  /** flush() calls made while offline: settled after the next verified connection re-sent everything. */
  private waiters: Waiter[] = [];
  private firstConnect: { resolve(): void; reject(err: SdkError): void } | null = null;
  private closing: Promise<void> | null = null;

  /** The constructor only checks options and opens nothing. */
  constructor(options: ConnectOptions, pickTransport: TransportPicker) {
    super();
    checkApiKey(options.apiKey);
    if (options.deviceId !== undefined) checkDeviceId(options.deviceId);
    this.apiKey = options.apiKey;
    this.deviceId = options.deviceId ?? null;
    this.deviceLabels = options.labels === undefined ? null : checkDeviceLabels(options.labels);
    this.o = resolveOptions(options);
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? {};
    this.backoff = this.o.reconnect ? new Backoff(this.o.reconnect, options.random) : null;
    this.transport = pickTransport(options, this.o.maxLineBytes);
    this.where = this.transport.where;
    this.jsonBudget = jsonBudget(this.o.maxLineBytes);
    this.logs = new BoundedQueue<QueuedLog>(this.o.offlineLogLimit);
    for (const [name, type] of Object.entries(options.types ?? {})) {
      const checked = toWireVar({ name, value: '', type });
      this.declaredTypes.set(name, checked.type);
    }
    // Before any connection, so they are simply the first values: the first i: reports them.
    if (options.defaults !== undefined) this.setVars(options.defaults);
  }

  /** Opens the first connection; settles like {@link connect}. */
  start(): Promise<void> {
    if (this.started || this.st === 'closed') return Promise.reject(new SdkError('bad_option', 'start() may be called once'));
    this.started = true;
    return new Promise<void>((resolve, reject) => {
      this.firstConnect = { resolve, reject };
      this.openSocket();
    });
  }

  /**
   * Opens the first connection without waiting for it: failures of the first attempt are retried
   * with the backoff like a reconnect (see {@link createClient}). Throws bad_option when called twice
   * or with `reconnect: false`, which would leave nothing to retry with.
   */
  startInBackground(): void {
    if (this.started || this.st === 'closed') throw new SdkError('bad_option', 'start() may be called once');
    if (!this.backoff) throw new SdkError('bad_option', 'a background connect needs reconnect (not false): it retries until the daemon answers');
    this.started = true;
    this.retryFirst = true;
    this.openSocket();
  }

  /** Where the client is right now. */
  get state(): ClientState {
    return this.st;
  }

  /** True while verified and able to send. */
  get connected(): boolean {
    return this.st === 'online';
  }

  /** Logs dropped so far: oldest ones pushed out of a full queue, unserializable ones, and ones logged after close(). */
  get dropped(): number {
    return this.logs.dropped + this.droppedOther;
  }

  /** Logs waiting to be sent. */
  get queuedLogs(): number {
    return this.logs.length;
  }

  /**
   * Sets one variable. Its type is inferred when omitted (integer, float, boolean or string) and its value
   * goes on the wire as a string. Changes within `varsWindowMs` are sent together, latest value per name.
   * Throws SdkError `bad_var` for a value the daemon would reject, `closed` after close().
   */
  setVar(name: string, value: VarValue, type?: string): void {
    this.setVars([type === undefined ? { name, value } : { name, value, type }]);
  }

  /**
   * Sets several variables at once: an object or Map (`{enemy_speed: 3, spawn_ms: {value: 400, type: 'float'}}`)
   * or an array of `{name, value, type?}`. All are checked before any is applied.
   *
   * Types: a `type` given here, in `defaults` or in `types` sticks to the name, so later calls
   * without one keep it. Otherwise it is inferred per value, except that a whole number keeps a
   * float type the variable already has (from this game or the daemon): `setVar('spawn_ms', 400.5)`
   * after `setVar('spawn_ms', 800)` is sent as a float, and a later 800 stays a float, so the type
   * the dashboard sees does not flip back and a dashboard value of 400.5 is not refused as "not an
   * integer". Declare `{spawn_ms: 'float'}` to have it a float from the first value.
   */
  setVars(inputs: VarsInput): void {
    if (this.st === 'closed') throw new SdkError('closed', 'client is closed');
    const items = varInputs(inputs);
    const wire = items.map((input) => {
      const v = toWireVar({ name: input.name, value: input.value, type: input.type ?? this.typeFor(input.name, input.value) });
      if (utf8Length(JSON.stringify(v)) + 2 > this.jsonBudget)
        throw new SdkError('bad_var', `variable ${v.name} does not fit in one line of ${this.o.maxLineBytes} bytes`);
      return v;
    });
    for (const [i, v] of wire.entries()) {
      if (items[i]?.type !== undefined) this.declaredTypes.set(v.name, v.type);
      this.vars.set(v.name, v);
      this.own.set(v.name, v);
      // Offline, nothing is pending: every variable is re-sent after the next verify.
      if (this.st === 'online') this.pendingVars.set(v.name, v);
    }
    this.armVarsWindow();
  }

  /** The type for a value set without one: declared, else inferred, keeping a float type for whole numbers. */
  private typeFor(name: string, value: VarValue): string {
    const declared = this.declaredTypes.get(name);
    if (declared !== undefined) return declared;
    const inferred = inferType(value);
    const current = this.vars.get(name);
    if (inferred === 'integer' && current && varKind(current.type) === 'float') return current.type;
    return inferred;
  }

  /**
   * The effective value of a number variable: what the daemon sent last, else what the game set (or
   * its default); `fallback` when the variable is unknown or its value is not a number.
   */
  getNumber(name: string, fallback: number): number {
    const v = this.vars.get(name);
    return v ? (varNumber(v.value) ?? fallback) : fallback;
  }

  /** The effective value of a boolean variable (`true`/`false`, `1`/`0`), else `fallback`. */
  getBool(name: string, fallback: boolean): boolean {
    const v = this.vars.get(name);
    return v ? (varBoolean(v.value) ?? fallback) : fallback;
  }

  /** The type a variable has now (declared, inferred, or the daemon's), or undefined when it is unknown. */
  typeOf(name: string): string | undefined {
    return this.vars.get(name)?.type;
  }

  /** The effective value of a variable as its wire text, else `fallback` when it is unknown. */
  getString(name: string, fallback: string): string {
    return this.vars.get(name)?.value ?? fallback;
  }

  /**
   * Calls `fn(value, change)` whenever the daemon changes the effective value of `name` (a repeated
   * identical `v:`, such as an override re-sent after a report, does not call it; the game's own
   * setVar does not either). Returns a function that removes the listener. A throwing listener is
   * reported as an 'error' event like any other.
   */
  onChange(name: string, fn: ChangeListener): () => void {
    let set = this.changeListeners.get(name);
    if (!set) this.changeListeners.set(name, (set = new Set()));
    set.add(fn);
    return () => {
      this.changeListeners.get(name)?.delete(fn);
    };
  }

  /** The labels this client declares, or null. */
  get labels(): Labels | null {
    return this.deviceLabels;
  }

  /**
   * Replaces the device's labels (`{}` clears them) and sends them at once when online, else after
   * the next `OK`. Throws `bad_labels` for a label that breaks the rules, `closed` after close().
   */
  setLabels(labels: Readonly<Record<string, string>>): void {
    if (this.st === 'closed') throw new SdkError('closed', 'client is closed');
    this.deviceLabels = checkDeviceLabels(labels);
    if (this.st === 'online' && this.socket) this.sendLabels(this.socket);
  }

  /** The current typed value of a variable, whether set here or from the dashboard. */
  get(name: string): VarValue | undefined {
    const v = this.vars.get(name);
    return v ? typedValue(v.type, v.value) : undefined;
  }

  /** Every current variable, typed. */
  getAll(): Record<string, VarValue> {
    const out: Record<string, VarValue> = {};
    for (const v of this.vars.values()) out[v.name] = typedValue(v.type, v.value);
    return out;
  }

  /**
   * Queues one log entry: `{message, level, timestamp, ...fields}`. Sent when `logBatchSize` entries
   * are queued or `logIntervalMs` after the first, whichever comes first. Never throws: an entry that
   * cannot be serialized or does not fit in a line is dropped, counted and reported as an 'error' event.
   */
  log(message: string, fields: LogFields = {}): void {
    if (this.st === 'closed') {
      this.droppedOther++;
      return;
    }
    const entry = this.serializeLog(message, fields);
    if (!entry) return;
    this.logs.push(entry);
    if (this.st !== 'online') return;
    if (this.logs.length >= this.o.logBatchSize) this.sendLogs(false);
    else if (this.logsTimer === null)
      this.logsTimer = this.clock.setTimeout(() => {
        this.logsTimer = null;
        this.sendLogs(false);
      }, this.o.logIntervalMs);
  }

  /**
   * Sends every queued variable change and log now; resolves once they were written to the socket.
   * While offline it waits for the next verified connection. Rejects with `closed` if the client is
   * closed first, or `connection_lost` / `connection_error` if the socket failed while writing.
   */
  flush(): Promise<void> {
    if (this.st === 'closed') return Promise.reject(new SdkError('closed', 'client is closed'));
    const socket = this.socket;
    if (this.st !== 'online' || !socket) return new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.sendPendingVars();
    this.sendLogs(true);
    return this.lastWrite.then((err) => {
      if (err) throw err;
    });
  }

  /**
   * Flushes (when connected), closes the connection and stops reconnecting. Resolves when the socket
   * is closed; calling it again returns the same promise. Pending offline flush() calls reject with `closed`.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // --- connection lifecycle ---------------------------------------------------------------------

  private openSocket(): void {
    this.st = 'connecting';
    this.lastError = null;
    // Every handler checks that its transport is still the current one: a dropped attempt may
    // still report on a later turn.
    let socket: SdkTransport | null = null;
    const current = (): SdkTransport | null => (socket !== null && this.socket === socket ? socket : null);
    const events: TransportEvents = {
      open: () => {
        const s = current();
        if (!s) return;
        this.st = 'verifying';
        this.write(s, encodeVerify(this.apiKey, this.deviceId));
      },
      line: (line) => {
        const s = current();
        if (s) this.onLine(s, line);
      },
      tooLong: (bytes) => {
        if (current()) this.report(new SdkError('line_too_long', `the daemon sent a line of ${bytes} bytes, over maxLineBytes ${this.o.maxLineBytes}`));
      },
      drain: () => {
        if (current() && this.st === 'online' && this.logs.length > 0) this.sendLogs(false);
      },
      error: (err) => {
        if (current()) this.lastError ??= err;
      },
      problem: (err) => {
        if (current()) this.report(err);
      },
      close: () => {
        if (socket) this.onSocketClose(socket);
      },
    };
    socket = this.transport.open(events, this.clock);
    this.socket = socket;
    const opened = socket;
    this.connectTimer = this.clock.setTimeout(() => {
      this.connectTimer = null;
      this.dropSocket(opened, new SdkError('connect_timeout', `no OK from ${this.where} within ${this.o.connectTimeoutMs} ms`));
    }, this.o.connectTimeoutMs);
  }

  /** Ends a connection attempt or a connection; the 'close' handler decides what comes next. */
  private dropSocket(socket: SdkTransport, err: SdkError): void {
    if (this.socket !== socket) return;
    this.lastError = err;
    socket.destroy();
  }

  private onLine(socket: SdkTransport, line: string): void {
    const msg = decodeServerLine(line);
    switch (msg.kind) {
      case 'ok':
        // A second OK (a repeated v:) changes nothing.
        if (this.st === 'verifying') this.goOnline(socket);
        return;
      case 'error': {
        // l:, i: and v: never get unknown_command: on a connection that sent d:, it is that d:.
        if (msg.code === 'unknown_command' && this.labelsProbe === socket) {
          this.labelsProbe = null;
          this.logger.debug?.('observerio sdk: the daemon does not know d: (labels); carrying on without them');
          return;
        }
        const err = new SdkError(msg.code, msg.message || msg.code, { fromDaemon: true });
        if (this.st === 'verifying') this.dropSocket(socket, err);
        else this.report(err);
        return;
      }
      case 'vars':
        if (msg.apiKey !== this.apiKey) this.report(new SdkError('bad_server_line', `the daemon sent variables for another API key ${msg.apiKey}`));
        else this.applyRemote(msg.vars);
        return;
      case 'invalid':
        this.report(new SdkError('bad_server_line', `cannot decode a line from the daemon: ${msg.reason}`));
        return;
      case 'unknown':
        // Extensions are additive: a newer daemon may send lines this SDK does not know.
        this.logger.debug?.(`observerio sdk: ignoring unknown line ${JSON.stringify(msg.line.slice(0, 32))}`);
        return;
    }
  }

  private goOnline(socket: SdkTransport): void {
    this.clearTimer('connectTimer');
    this.st = 'online';
    this.onlineSince = this.clock.now();
    const reconnected = this.hasConnected;
    this.hasConnected = true;
    // Labels first: the daemon decides which overrides apply to the device by them.
    if (this.deviceLabels) this.sendLabels(socket);
    // The daemon may have lost or never seen them (restart, in-memory store): re-send every variable
    // (only the game's own ones when the daemon keeps overrides, see confirmRemoteVars).
    this.pendingVars.clear();
    this.writeVars(socket, [...(this.o.confirmRemoteVars ? this.vars : this.own).values()]);
    this.sendLogs(false);
    this.armHeartbeat();
    if (this.waiters.length > 0) {
      const waiters = this.waiters;
      this.waiters = [];
      // Offline flush() calls also cover logs held back by backpressure.
      this.sendLogs(true);
      void this.lastWrite.then((err) => {
        for (const w of waiters) {
          if (err) w.reject(err);
          else w.resolve();
        }
      });
    }
    this.logger.debug?.(`observerio sdk: ${reconnected ? 'reconnected' : 'connected'} to ${this.where}`);
    const first = this.firstConnect;
    this.firstConnect = null;
    first?.resolve();
    this.emit('connected', { reconnected });
  }

  private onSocketClose(socket: SdkTransport): void {
    if (this.socket !== socket) return;
    this.socket = null;
    this.clearTimer('connectTimer');
    this.clearTimer('varsTimer');
    this.clearTimer('logsTimer');
    this.clearTimer('heartbeatTimer');
    const wasOnline = this.st === 'online';
    const err =
      this.lastError ??
      new SdkError('connection_lost', wasOnline ? `${this.where} closed the connection` : `${this.where} closed the connection before answering OK`);
    this.pendingVars.clear();
    if (this.labelsProbe === socket) this.labelsProbe = null;

    if (!this.hasConnected && !this.retryFirst) {
      this.st = 'closed';
      const first = this.firstConnect;
      this.firstConnect = null;
      first?.reject(err);
      return;
    }
    if (!this.backoff) {
      this.st = 'closed';
      this.rejectWaiters(err);
      if (wasOnline) this.emit('disconnected', { error: err, willReconnect: false });
      return;
    }
    if (wasOnline && this.clock.now() - this.onlineSince >= (this.o.reconnect as BackoffOptions).stableMs) this.backoff.reset();
    const delayMs = this.backoff.next();
    this.st = 'waiting';
    // Scheduled before the events so a listener calling close() cancels it.
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = null;
      if (this.st === 'waiting') this.openSocket();
    }, delayMs);
    this.logger.debug?.(`observerio sdk: ${err.message}; reconnecting in ${delayMs} ms`);
    if (wasOnline) this.emit('disconnected', { error: err, willReconnect: true });
    if (this.st === 'waiting') this.emit('reconnecting', { attempt: this.backoff.attempt, delayMs, error: err });
  }

  private async shutdown(): Promise<void> {
    if (this.st === 'online') {
      try {
        await this.flush();
      } catch {
        // The connection dropped while flushing; what was queued stays unsent, as documented.
      }
    }
    const wasOnline = this.st === 'online';
    this.st = 'closed';
    for (const t of ['connectTimer', 'retryTimer', 'varsTimer', 'logsTimer', 'heartbeatTimer'] as const) this.clearTimer(t);
    const err = new SdkError('closed', 'client closed');
    this.rejectWaiters(err);
    const first = this.firstConnect;
    this.firstConnect = null;
    first?.reject(err);
    const socket = this.socket;
    this.socket = null;
    if (socket) await this.endSocket(socket, wasOnline);
    if (wasOnline) this.emit('disconnected', { error: null, willReconnect: false });
  }

  private endSocket(socket: SdkTransport, graceful: boolean): Promise<void> {
    if (socket.isClosed) return Promise.resolve();
    const timer = this.clock.setTimeout(() => socket.destroy(), graceful ? CLOSE_GRACE_MS : 0);
    if (graceful) socket.end();
    else socket.destroy();
    return socket.closed.then(() => this.clock.clearTimeout(timer));
  }

  // --- sending ------------------------------------------------------------------------------------

  private write(socket: SdkTransport, line: string): void {
    this.lastWriteAt = this.clock.now();
    this.lastWrite = new Promise((resolve) => socket.write(line, resolve));
  }

  private sendLabels(socket: SdkTransport): void {
    if (!this.deviceLabels) return;
    this.labelsProbe = socket;
    this.write(socket, encodeLabels(this.apiKey, this.deviceLabels));
  }

  private armVarsWindow(): void {
    if (this.st !== 'online' || this.pendingVars.size === 0 || this.varsTimer !== null) return;
    this.varsTimer = this.clock.setTimeout(() => {
      this.varsTimer = null;
      this.sendPendingVars();
    }, this.o.varsWindowMs);
  }

  private sendPendingVars(): void {
    this.clearTimer('varsTimer');
    if (this.st !== 'online' || !this.socket || this.pendingVars.size === 0) return;
    const vars = [...this.pendingVars.values()];
    this.pendingVars.clear();
    this.writeVars(this.socket, vars);
  }

  /** Writes `i:` lines, as few as the line limit allows. */
  private writeVars(socket: SdkTransport, vars: readonly Var[]): void {
    let parts: string[] = [];
    let bytes = 2;
    for (const { name, type, value } of vars) {
      const json = JSON.stringify({ name, type, value });
      const size = utf8Length(json) + 1;
      if (parts.length > 0 && bytes + size > this.jsonBudget) {
        this.write(socket, `i:${this.apiKey}:${encodePayload(`[${parts.join(',')}]`)}`);
        parts = [];
        bytes = 2;
      }
      parts.push(json);
      bytes += size;
    }
    if (parts.length > 0) this.write(socket, `i:${this.apiKey}:${encodePayload(`[${parts.join(',')}]`)}`);
  }

  /**
   * Writes queued logs in `l:` lines of at most logBatchSize entries and maxLineBytes. Unless forced,
   * stops while the socket is backed up so that the bounded queue, not Node's write buffer, holds the
   * backlog; 'drain' resumes.
   */
  private sendLogs(force: boolean): void {
    const socket = this.socket;
    this.clearTimer('logsTimer');
    if (this.st !== 'online' || !socket) return;
    while (this.logs.length > 0) {
      if (!force && socket.needsDrain) return;
      const parts: string[] = [];
      let bytes = 2;
      while (parts.length < this.o.logBatchSize) {
        const next = this.logs.peek();
        if (!next || (parts.length > 0 && bytes + next.bytes + 1 > this.jsonBudget)) break;
        parts.push(next.json);
        bytes += next.bytes + 1;
        this.logs.shift();
      }
      this.write(socket, encodeLogsJson(this.apiKey, parts));
    }
  }

  private serializeLog(message: string, fields: LogFields): QueuedLog | null {
    const drop = (why: string): null => {
      this.droppedOther++;
      this.report(new SdkError('bad_log', `log dropped: ${why}`));
      return null;
    };
    const { level, timestamp, message: _ignored, ...rest } = fields;
    if (typeof message !== 'string') return drop('message must be a string');
    if (level !== undefined && typeof level !== 'string') return drop('level must be a string');
    const ts = timestamp ?? this.clock.now();
    // JSON would turn NaN into null, which the daemon rejects along with the whole batch.
    if (typeof ts !== 'number' || !Number.isFinite(ts)) return drop('timestamp must be a finite number');
    let json: string;
    try {
      json = JSON.stringify({ message, level: level ?? 'info', timestamp: ts, ...rest });
    } catch (err) {
      return drop(`fields are not JSON-serializable (${(err as Error).message})`);
    }
    const bytes = utf8Length(json);
    if (bytes + 2 > this.jsonBudget) return drop(`entry of ${bytes} bytes does not fit in one line of ${this.o.maxLineBytes} bytes`);
    return { json, bytes };
  }

  private armHeartbeat(): void {
    const every = this.o.heartbeatMs;
    if (every <= 0) return;
    const tick = (): void => {
      this.heartbeatTimer = null;
      if (this.st !== 'online' || !this.socket) return;
      if (this.clock.now() - this.lastWriteAt >= every) this.write(this.socket, `l:${this.apiKey}:${EMPTY_ARRAY_B64}`);
      this.heartbeatTimer = this.clock.setTimeout(tick, every);
    };
    this.heartbeatTimer = this.clock.setTimeout(tick, every);
  }

  // --- receiving ----------------------------------------------------------------------------------

  private applyRemote(vars: readonly Var[]): void {
    const changes: VarChange[] = [];
    const changed: VarChange[] = [];
    for (const v of vars) {
      const prev = this.vars.get(v.name);
      this.vars.set(v.name, v);
      const differs = !prev || prev.value !== v.value || prev.type !== v.type;
      // The dashboard's value arrived last, so it wins over a local change not sent yet; the same value
      // again (the daemon re-sends an override that crossed a report) keeps its confirmation waiting,
      // or the daemon's last report of this device would stay the old value.
      const waiting = this.pendingVars.get(v.name);
      if (this.o.confirmRemoteVars && differs && this.st === 'online') this.pendingVars.set(v.name, v);
      else if (!(waiting && waiting.value === v.value && waiting.type === v.type)) this.pendingVars.delete(v.name);
      const change: VarChange = { name: v.name, type: v.type, value: typedValue(v.type, v.value), raw: v.value, previous: prev ? typedValue(prev.type, prev.value) : undefined };
      changes.push(change);
      if (differs) changed.push(change);
    }
    this.armVarsWindow();
    if (changes.length > 0) this.emit('vars', changes);
    for (const change of changed) {
      for (const fn of [...(this.changeListeners.get(change.name) ?? [])]) {
        try {
          fn(change.value, change);
        } catch (err) {
          this.onListenerError('vars', err);
        }
      }
    }
  }

  // --- helpers ------------------------------------------------------------------------------------

  private report(err: SdkError): void {
    if (!this.emit('error', err)) this.logger.warn?.(`observerio sdk: ${err.code}: ${err.message}`);
  }

  protected override onListenerError(event: keyof ClientEvents, err: unknown): void {
    const msg = err instanceof Error ? err.message : String(err);
    this.logger.error?.(`observerio sdk: a '${String(event)}' listener threw: ${msg}`);
    if (event !== 'error') this.report(new SdkError('listener_error', `a '${String(event)}' listener threw: ${msg}`, { cause: err }));
  }

  private rejectWaiters(err: SdkError): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }

  private clearTimer(name: 'connectTimer' | 'retryTimer' | 'varsTimer' | 'logsTimer' | 'heartbeatTimer'): void {
    const t = this[name];
    if (t !== null) {
      this.clock.clearTimeout(t);
      this[name] = null;
    }
  }
}
