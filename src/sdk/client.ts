/**
 * The SDK client a game holds: one TCP connection to the daemon that verifies the API key, streams
 * variables and logs in batches, applies variable changes pushed from the dashboard, and reconnects by
 * itself (backoff with jitter) while keeping a bounded queue of what the daemon has not seen yet.
 */
import { createConnection, type Socket } from 'node:net';
import { Backoff, backoffOptions, type BackoffOptions } from './backoff.js';
import { BoundedQueue } from './bounded-queue.js';
import { systemClock, type SdkClock, type TimerHandle } from './clock.js';
import {
  DEFAULT_MAX_LINE_BYTES,
  EMPTY_ARRAY_B64,
  checkApiKey,
  checkDeviceId,
  decodeServerLine,
  encodeLogsJson,
  encodePayload,
  encodeVerify,
  jsonBudget,
  toWireVar,
  typedValue,
  type Var,
  type VarInput,
  type VarValue,
} from './codec.js';
import { TypedEmitter } from './emitter.js';
import { SdkError, socketError } from './errors.js';
import { LineSplitter } from './line-splitter.js';

/** Where the SDK reports what it does; a pino logger fits. All methods are optional. */
export interface SdkLogger {
  debug?(msg: string): void;
  info?(msg: string): void;
  warn?(msg: string): void;
  error?(msg: string): void;
}

export interface ConnectOptions {
  /** Daemon host; default `127.0.0.1`. */
  host?: string;
  /** Daemon TCP port; default 4040. */
  port?: number;
  /** The account's API key: exactly 12 characters of [A-Za-z0-9]. Checked before connecting. */
  apiKey: string;
  /**
   * Names this device (`v:<apiKey>:<deviceId>`, 1-64 characters of [A-Za-z0-9._-]). An extension:
   * leave it out with the original Elixir daemon, which does not answer such a line.
   */
  deviceId?: string;
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
   * differs from what this client had). Keeps the daemon's stored value equal to the game's when a
   * re-sent variable and a buffered dashboard change cross after a reconnect. Default true.
   */
  confirmRemoteVars?: boolean;
  logger?: SdkLogger;
  /** Time source for timeouts, windows and backoff; default the real clock. */
  clock?: SdkClock;
  /** Uniform in [0, 1) for the backoff jitter; default Math.random. */
  random?: () => number;
}

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
  host: string;
  port: number;
  logBatchSize: number;
  logIntervalMs: number;
  varsWindowMs: number;
  reconnect: BackoffOptions | false;
  offlineLogLimit: number;
  connectTimeoutMs: number;
  maxLineBytes: number;
  heartbeatMs: number;
  confirmRemoteVars: boolean;
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
const KEEPALIVE_DELAY_MS = 30_000;

function resolveOptions(o: ConnectOptions): Resolved {
  const int = (name: string, v: number | undefined, def: number, min: number): number => {
    const n = v ?? def;
    if (!Number.isInteger(n) || n < min) throw new SdkError('bad_option', `${name} must be an integer >= ${min}, got ${String(v)}`);
    return n;
  };
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
    host: o.host ?? '127.0.0.1',
    port: int('port', o.port, 4040, 1),
    logBatchSize: int('logBatchSize', o.logBatchSize, 100, 1),
    logIntervalMs: int('logIntervalMs', o.logIntervalMs, 250, 0),
    varsWindowMs: int('varsWindowMs', o.varsWindowMs, 10, 0),
    reconnect,
    offlineLogLimit: int('offlineLogLimit', o.offlineLogLimit, 10_000, 0),
    connectTimeoutMs: int('connectTimeoutMs', o.connectTimeoutMs, 10_000, 1),
    maxLineBytes,
    heartbeatMs: int('heartbeatMs', o.heartbeatMs, 0, 0),
    confirmRemoteVars: o.confirmRemoteVars ?? true,
  };
}

/**
 * Connects to the daemon and resolves once it answered `OK` to the client's `v:` line.
 *
 * Rejects with an {@link SdkError} whose `code` says why: `bad_api_key` / `bad_device_id` / `bad_option`
 * (checked locally, nothing is sent), the daemon's own code such as `unknown_api_key` or `server_busy`,
 * `connection_refused`, `connection_error` or `connect_timeout`. The first connection is not retried;
 * once connected, the client reconnects by itself.
 *
 * @example
 * const client = await connect({ host: '127.0.0.1', port: 4040, apiKey: 'abcDEF123456' });
 * client.on('vars', (changes) => { for (const c of changes) tune(c.name, c.value); });
 * client.setVar('enemy_speed', 1.5);
 * client.log('level started', { level: 'info', stage: 3 });
 * await client.close();
 */
export async function connect(options: ConnectOptions): Promise<Client> {
  const client = new Client(options);
  await client.start();
  return client;
}

/** A connection to the daemon. Create it with {@link connect}. */
export class Client extends TypedEmitter<ClientEvents> {
  readonly apiKey: string;
  readonly deviceId: string | null;
  private readonly o: Resolved;
  private readonly clock: SdkClock;
  private readonly logger: SdkLogger;
  private readonly backoff: Backoff | null;
  private readonly where: string;
  private readonly jsonBudget: number;

  private st: ClientState = 'connecting';
  private socket: Socket | null = null;
  private lastError: SdkError | null = null;
  private hasConnected = false;
  private onlineSince = 0;

  private connectTimer: TimerHandle | null = null;
  private retryTimer: TimerHandle | null = null;
  private varsTimer: TimerHandle | null = null;
  private logsTimer: TimerHandle | null = null;
  private heartbeatTimer: TimerHandle | null = null;

  /** Current value of every variable, set here or from the dashboard, in first-seen order. */
  private readonly vars = new Map<string, Var>();
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

  /** Use {@link connect}; the constructor only checks options and opens nothing. */
  constructor(options: ConnectOptions) {
    super();
    checkApiKey(options.apiKey);
    if (options.deviceId !== undefined) checkDeviceId(options.deviceId);
    this.apiKey = options.apiKey;
    this.deviceId = options.deviceId ?? null;
    this.o = resolveOptions(options);
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? {};
    this.backoff = this.o.reconnect ? new Backoff(this.o.reconnect, options.random) : null;
    this.where = `${this.o.host}:${this.o.port}`;
    this.jsonBudget = jsonBudget(this.o.maxLineBytes);
    this.logs = new BoundedQueue<QueuedLog>(this.o.offlineLogLimit);
  }

  /** Opens the first connection; settles like {@link connect}. */
  start(): Promise<void> {
    if (this.firstConnect || this.hasConnected || this.st === 'closed') return Promise.reject(new SdkError('bad_option', 'start() may be called once'));
    return new Promise<void>((resolve, reject) => {
      this.firstConnect = { resolve, reject };
      this.openSocket();
    });
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

  /** Sets several variables at once; all are checked before any is applied. */
  setVars(inputs: readonly VarInput[]): void {
    if (this.st === 'closed') throw new SdkError('closed', 'client is closed');
    const wire = inputs.map((input) => {
      const v = toWireVar(input);
      if (Buffer.byteLength(JSON.stringify(v)) + 2 > this.jsonBudget)
        throw new SdkError('bad_var', `variable ${v.name} does not fit in one line of ${this.o.maxLineBytes} bytes`);
      return v;
    });
    for (const v of wire) {
      this.vars.set(v.name, v);
      // Offline, nothing is pending: every variable is re-sent after the next verify.
      if (this.st === 'online') this.pendingVars.set(v.name, v);
    }
    this.armVarsWindow();
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
    const socket = createConnection({ host: this.o.host, port: this.o.port });
    this.socket = socket;
    const splitter = new LineSplitter(this.o.maxLineBytes);
    this.connectTimer = this.clock.setTimeout(() => {
      this.connectTimer = null;
      this.dropSocket(socket, new SdkError('connect_timeout', `no OK from ${this.where} within ${this.o.connectTimeoutMs} ms`));
    }, this.o.connectTimeoutMs);

    socket.on('connect', () => {
      if (this.socket !== socket) return;
      // Variable pushes are tiny and latency is the point; Nagle would hold them back.
      socket.setNoDelay(true);
      socket.setKeepAlive(true, KEEPALIVE_DELAY_MS);
      this.st = 'verifying';
      this.write(socket, encodeVerify(this.apiKey, this.deviceId));
    });
    socket.on('data', (chunk: Buffer) => {
      for (const ev of splitter.push(chunk)) {
        // A line may have closed the socket (an e: reply to v:); the rest of the chunk is moot.
        if (this.socket !== socket) return;
        if (ev.kind === 'line') this.onLine(socket, ev.line);
        else this.report(new SdkError('line_too_long', `the daemon sent a line of ${ev.bytes} bytes, over maxLineBytes ${this.o.maxLineBytes}`));
      }
    });
    socket.on('drain', () => {
      if (this.socket === socket && this.st === 'online' && this.logs.length > 0) this.sendLogs(false);
    });
    socket.on('error', (err: Error & { code?: string }) => {
      if (this.socket === socket) this.lastError ??= socketError(err, this.where);
    });
    socket.on('close', () => this.onSocketClose(socket));
  }

  /** Ends a connection attempt or a connection; the 'close' handler decides what comes next. */
  private dropSocket(socket: Socket, err: SdkError): void {
    if (this.socket !== socket) return;
    this.lastError = err;
    socket.destroy();
  }

  private onLine(socket: Socket, line: string): void {
    const msg = decodeServerLine(line);
    switch (msg.kind) {
      case 'ok':
        // A second OK (a repeated v:) changes nothing.
        if (this.st === 'verifying') this.goOnline(socket);
        return;
      case 'error': {
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

  private goOnline(socket: Socket): void {
    this.clearTimer('connectTimer');
    this.st = 'online';
    this.onlineSince = this.clock.now();
    const reconnected = this.hasConnected;
    this.hasConnected = true;
    // The daemon may have lost or never seen them (restart, in-memory store): re-send every variable.
    this.pendingVars.clear();
    this.writeVars(socket, [...this.vars.values()]);
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

  private onSocketClose(socket: Socket): void {
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

    if (!this.hasConnected) {
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

  private endSocket(socket: Socket, graceful: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      if (socket.destroyed || socket.closed) return resolve();
      socket.once('close', () => {
        this.clock.clearTimeout(timer);
        resolve();
      });
      // Swallowed: the socket is going away and the close() caller cannot act on it.
      socket.on('error', () => undefined);
      const timer = this.clock.setTimeout(() => socket.destroy(), graceful ? CLOSE_GRACE_MS : 0);
      if (graceful) socket.end();
      else socket.destroy();
    });
  }

  // --- sending ------------------------------------------------------------------------------------

  private write(socket: Socket, line: string): void {
    this.lastWriteAt = this.clock.now();
    this.lastWrite = new Promise((resolve) => {
      socket.write(`${line}\n`, (err) => resolve(err ? socketError(err, this.where) : null));
    });
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
  private writeVars(socket: Socket, vars: readonly Var[]): void {
    let parts: string[] = [];
    let bytes = 2;
    for (const { name, type, value } of vars) {
      const json = JSON.stringify({ name, type, value });
      const size = Buffer.byteLength(json) + 1;
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
      if (!force && socket.writableNeedDrain) return;
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
    const bytes = Buffer.byteLength(json);
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
    for (const v of vars) {
      const prev = this.vars.get(v.name);
      this.vars.set(v.name, v);
      const differs = !prev || prev.value !== v.value || prev.type !== v.type;
      // The dashboard's value arrived last, so it wins over a local change not sent yet.
      if (this.o.confirmRemoteVars && differs && this.st === 'online') this.pendingVars.set(v.name, v);
      else this.pendingVars.delete(v.name);
      changes.push({ name: v.name, type: v.type, value: typedValue(v.type, v.value), raw: v.value, previous: prev ? typedValue(prev.type, prev.value) : undefined });
    }
    this.armVarsWindow();
    if (changes.length > 0) this.emit('vars', changes);
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
