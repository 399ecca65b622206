/**
 * One SDK connection: its transport and what outlives a crash of its actor (verification, counters,
 * error budget), and the ConnectionActor that frames lines and runs the protocol. The actor owns the
 * transport through its spec's arguments, so a restart gets a fresh parser on the same transport.
 */
import type { ErrorCode } from '../errors.js';
import type { Gateway, DeviceInfo } from '../gateway/gateway.js';
import type { TenantLimits, VarsVerdict } from '../limits/tenant-limits.js';
import type { Metrics } from '../metrics.js';
import type { Var } from '../model.js';
import type { ActorContext, ActorRef, ChildSpec } from '../otp/index.js';
import { RestartIntensity, worker } from '../otp/index.js';
import type { TcpConfig } from '../config.js';
import { LineFramer, type FrameEvent } from './line-framer.js';
import { errorReply, OK_REPLY, parseLine, type Command } from './protocol.js';
import type { LineTransport, LineTransportEvents } from './transport.js';
import type { Labels } from '../variables/labels.js';

/** The part of the gateway a connection drives; `vars` answers false when it refuses the changes. */
export type ConnectionGateway = Pick<Gateway, 'verifyKey' | 'logs' | 'device'> & {
  vars(apiKey: string, deviceId: string | null, vars: readonly Var[]): boolean | void;
};

/** A refused i: line: not an error of the device's, so it does not count toward its error budget. */
const UNAVAILABLE_REPLY = errorReply({ code: 'unavailable', message: 'the store is unreachable and this node holds all the changes it can; this i: line was not kept, send it again later' });

/** What the connection needs from the rest of the daemon. */
export interface ConnectionDeps {
  tcp: TcpConfig;
  gateway: ConnectionGateway;
  /** The node's per-tenant limits (per key at v:, i: and l:; the listener checks per address). */
  limits: TenantLimits;
  metrics: Metrics;
  nodeId: string;
  /** Called once verified (and again after a restart): register the connection, start the key's client actor. */
  onVerified(conn: Connection, ctx: ActorContext<ConnectionMsg>): void;
  /** A verified device reported variables (`i:`), after the gateway took them: the override rule (§8). */
  onReport?(conn: Connection, vars: readonly Var[]): void;
  /** A verified device declared its labels (`d:`, docs/PROTOCOL.md §13). */
  onLabels?(conn: Connection, labels: Labels): void;
  /** Lines starting with this crash the handler on purpose (fault injection for tests and benchmarks); null = off. */
  crashPrefix: string | null;
}

export type ConnectionMsg = { kind: 'data'; chunk: Buffer } | { kind: 'closed'; reason: string } | { kind: 'resume' };

/** Past this many bytes queued for a slow reader, the connection is dropped rather than buffered. */
const MAX_WRITE_BACKLOG = 8 * 1024 * 1024;
/** A limit's refusals are answered at most once per this per connection and code: never amplify a flood. */
const REFUSAL_REPLY_MS = 1000;

/** The `transport` label of each kind, one object per kind rather than one per connection. */
const labelsByKind = new Map<string, { transport: string }>();
function transportLabels(kind: string): { transport: string } {
  let l = labelsByKind.get(kind);
  if (!l) labelsByKind.set(kind, (l = { transport: kind }));
  return l;
}

/** The labels of a connection that declared none: one object for all of them. */
const NO_LABELS: Labels = Object.freeze({});

/**
 * What the transport tells a connection, forwarded to its actor's mailbox: an object of a class
 * rather than two closures and their context per connection.
 */
class ConnectionEvents implements LineTransportEvents {
  constructor(
    private readonly conn: Connection,
    private readonly self: ActorRef<ConnectionMsg>,
    private readonly metrics: Metrics,
  ) {}

  data(chunk: Buffer): void {
    this.self.send({ kind: 'data', chunk });
  }

  // Not through the mailbox: the gauge must drop even when the actor has already stopped.
  closed(reason: string): void {
    this.metrics.connections.dec(transportLabels(this.conn.transport.kind));
    this.conn.transportGone();
    this.self.send({ kind: 'closed', reason: this.conn.closeReason ?? reason });
  }
}

export class Connection {
  verified: { apiKey: string; deviceId: string | null } | null = null;
  /** Taken on by the key's client actors (ClientActors.deviceVerified); outlives a restart of the actor. */
  takenOn = false;
  /** The labels of its last `d:` line; outlives a restart of the actor, as verification does. */
  labels: Labels = NO_LABELS;
  readonly connectedAt = Date.now();
  lastLineAt: number | null = null;
  linesIn = 0;
  bytesIn = 0;
  linesOut = 0;
  bytesOut = 0;
  closed = false;
  closeReason: string | null = null;
  /**
   * The lines of the chunk being processed and how far we got. A crash on one line must not lose the
   * lines after it in the same chunk: the next incarnation carries on from here.
   */
  backlog: FrameEvent[] = [];
  backlogAt = 0;
  /**
   * Protocol errors in a sliding window: the same bookkeeping as a supervisor's restart intensity.
   * Made at the first error: most connections never make one.
   */
  private errors: RestartIntensity | null = null;
  private verifyTimer: NodeJS.Timeout | undefined;
  private listening = false;
  /** The transport reported its end: nothing may be acquired for this connection any more. */
  private gone = false;
  /** The key whose connection slot this connection holds, and the limits it holds it from. */
  private slotKey: string | null = null;
  private slotLimits: TenantLimits | null = null;
  /** When each limit code was last answered (REFUSAL_REPLY_MS). */
  private refusalRepliedAt: Partial<Record<ErrorCode, number>> | null = null;

  /** `now` is the error window's and refusal replies' clock (tests move it). */
  constructor(
    readonly id: string,
    readonly transport: LineTransport,
    readonly tcp: TcpConfig,
    private readonly now: () => number = Date.now,
  ) {}

  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }

  /**
   * Once, at the first start of the actor: the transport's events go to its mailbox (the ref
   * outlives restarts), and the verify and idle timers start.
   */
  listen(self: ActorRef<ConnectionMsg>, metrics: Metrics): void {
    if (this.listening) return;
    this.listening = true;
    metrics.connections.inc(transportLabels(this.transport.kind));
    this.transport.listen(new ConnectionEvents(this, self, metrics));
    this.transport.setIdleTimeout(this.tcp.idleTimeoutMs, () => this.close('idle timeout'));
    this.armVerifyTimeout(metrics);
  }

  /** Writes one or more complete lines; false (and the connection closes) when the reader is too slow. */
  write(text: string): boolean {
    if (this.closed) return false;
    if (this.transport.buffered > MAX_WRITE_BACKLOG) {
      this.close('slow reader: write backlog over 8 MiB');
      return false;
    }
    this.transport.write(text);
    this.linesOut += 1;
    this.bytesOut += text.length;
    return true;
  }

  /** Answers an error line; past the error budget, closes the connection as abusive. */
  error(code: ErrorCode, message: string, metrics: Metrics): void {
    metrics.protocolErrors.inc({ code });
    this.write(errorReply({ code, message }));
    this.errors ??= new RestartIntensity(this.tcp.maxErrors, this.tcp.errorWindowMs, this.now);
    if (!this.errors.add()) {
      metrics.protocolErrors.inc({ code: 'too_many_errors' });
      this.write(errorReply({ code: 'too_many_errors', message: `more than ${this.tcp.maxErrors} errors in ${this.tcp.errorWindowMs} ms; closing` }));
      this.close('too many protocol errors');
    }
  }

  /**
   * Takes the key's connection slot for as long as the transport lives (a crash of the actor keeps
   * it: the transport is the same); false when the key is at its limit. A peer already gone takes
   * no slot (nothing would give it back) and is not refused: its actor stops on the closed message.
   */
  holdKeySlot(apiKey: string, limits: TenantLimits): boolean {
    if (this.gone) return true;
    if (!limits.acquireKey(apiKey)) return false;
    this.slotKey = apiKey;
    this.slotLimits = limits;
    return true;
  }

  /** The transport reported its end: the key's slot goes back, and nothing may be acquired any more. */
  transportGone(): void {
    this.gone = true;
    if (this.slotKey !== null) this.slotLimits?.releaseKey(this.slotKey);
    this.slotKey = null;
    this.slotLimits = null;
  }

  /**
   * Answers a limit's refusal: not a protocol error of the device, so it costs no error budget, and
   * at most one line per code per second, however many lines the limit refuses (those are counted).
   */
  refuse(code: ErrorCode, message: string, metrics: Metrics): void {
    const now = this.now();
    const replied = (this.refusalRepliedAt ??= {});
    const last = replied[code];
    if (last !== undefined && now - last < REFUSAL_REPLY_MS && now >= last) return;
    replied[code] = now;
    metrics.protocolErrors.inc({ code });
    this.write(errorReply({ code, message }));
  }

  private armVerifyTimeout(metrics: Metrics): void {
    this.verifyTimer = setTimeout(() => {
      if (this.verified || this.closed) return;
      metrics.protocolErrors.inc({ code: 'verify_timeout' });
      this.write(errorReply({ code: 'verify_timeout', message: `no valid v: line within ${this.tcp.verifyTimeoutMs} ms; closing` }));
      this.close('verify timeout');
    }, this.tcp.verifyTimeoutMs);
    this.verifyTimer.unref();
  }

  markVerified(apiKey: string, deviceId: string | null): void {
    this.verified = { apiKey, deviceId };
    clearTimeout(this.verifyTimer);
    this.verifyTimer = undefined;
  }

  /** Ends the connection after what was written is flushed. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    clearTimeout(this.verifyTimer);
    this.transport.end();
    // A peer that never reads would keep a half-closed socket forever.
    setTimeout(() => this.transport.destroy(), 2000).unref();
  }

  device(nodeId: string): DeviceInfo {
    return {
      id: this.id,
      apiKey: this.verified?.apiKey ?? '',
      deviceId: this.verified?.deviceId ?? null,
      remoteAddress: this.remoteAddress,
      connectedAt: this.connectedAt,
      lastLineAt: this.lastLineAt,
      linesIn: this.linesIn,
      node: nodeId,
    };
  }
}

/** The actor's state: the line framer alone, fresh at every (re)start. */
type State = LineFramer;

const NO_EVENTS: FrameEvent[] = [];

function uncork(transport: LineTransport): void {
  transport.uncork();
}

/**
 * The connection actor's behaviour: one message per chunk from the transport, however many lines
 * it carries. A class rather than closures: a daemon holds one per connection, and prototype methods
 * cost nothing per instance.
 */
class ConnectionActor {
  private readonly metrics: Metrics;
  private readonly gateway: ConnectionGateway;
  // Lines per command, added to the labelled counter once per chunk: prom-client hashes the labels
  // on every inc(), which per line cost as much as parsing the line's header.
  private verifyLines = 0;
  private logsLines = 0;
  private varsLines = 0;
  private invalidLines = 0;

  constructor(
    private readonly conn: Connection,
    private readonly deps: ConnectionDeps,
  ) {
    this.metrics = deps.metrics;
    this.gateway = deps.gateway;
  }

  init(ctx: ActorContext<ConnectionMsg>): State {
    const { conn } = this;
    conn.listen(ctx.self, this.metrics);
    // A restart keeps the transport and its verification; only the parser state is fresh.
    if (conn.verified) this.deps.onVerified(conn, ctx);
    if (conn.backlogAt < conn.backlog.length) ctx.self.send({ kind: 'resume' });
    return new LineFramer(conn.tcp.maxLineBytes);
  }

  handle(state: State, msg: ConnectionMsg, ctx: ActorContext<ConnectionMsg>): void | Promise<void> {
    const { conn } = this;
    if (msg.kind === 'closed') {
      ctx.stop(msg.reason);
      return;
    }
    if (conn.closed) return;
    conn.transport.cork();
    try {
      // Lines left over by a crashed incarnation come first, so order is kept.
      if (conn.backlogAt < conn.backlog.length) {
        const wait = this.processBacklog(ctx);
        if (wait) return msg.kind === 'data' ? wait.then(() => this.handleChunk(state, msg.chunk, ctx)) : wait;
      }
      if (msg.kind === 'data') return this.handleChunk(state, msg.chunk, ctx);
    } finally {
      process.nextTick(uncork, conn.transport);
    }
  }

  terminate(_state: State, reason: string, restarting: boolean): void {
    const { conn } = this;
    // The transport belongs to the spec's arguments: a restart takes it over, only the end closes it.
    if (restarting) return;
    conn.close(reason);
    if (conn.verified) this.gateway.device('disconnected', conn.device(this.deps.nodeId));
  }

  info(state: State): Record<string, unknown> {
    const { conn } = this;
    return {
      apiKey: conn.verified?.apiKey ?? null,
      deviceId: conn.verified?.deviceId ?? null,
      transport: conn.transport.kind,
      remoteAddress: conn.remoteAddress,
      linesIn: conn.linesIn,
      bytesIn: conn.bytesIn,
      linesOut: conn.linesOut,
      bytesOut: conn.bytesOut,
      buffered: state.buffered,
    };
  }

  private handleChunk(state: State, chunk: Buffer, ctx: ActorContext<ConnectionMsg>): void | Promise<void> {
    const { conn } = this;
    conn.bytesIn += chunk.length;
    this.metrics.bytesReceived.inc(chunk.length);
    conn.backlog = state.push(chunk);
    conn.backlogAt = 0;
    return this.processBacklog(ctx);
  }

  /** Runs the chunk's lines in order; only an uncached verify makes it wait. */
  private processBacklog(ctx: ActorContext<ConnectionMsg>): void | Promise<void> {
    const { conn, metrics } = this;
    const events = conn.backlog;
    // The lines of one chunk arrived together: one clock read for all of them.
    if (conn.backlogAt < events.length) conn.lastLineAt = Date.now();
    try {
      while (conn.backlogAt < events.length) {
        if (conn.closed) return;
        // Advance first: if this line crashes the actor, the next incarnation starts after it.
        const ev = events[conn.backlogAt++] as FrameEvent;
        if (ev.kind === 'line') {
          const wait = this.handleLine(ev.line, ctx);
          if (wait) return wait.then(() => this.processBacklog(ctx));
        } else if (ev.kind === 'too_long') {
          conn.error('line_too_long', `line of ${ev.bytes}+ bytes exceeds the maximum of ${conn.tcp.maxLineBytes}`, metrics);
        } else {
          metrics.protocolErrors.inc({ code: 'line_too_long' });
          conn.close('a line that never ends');
          return;
        }
      }
      // Done with this chunk: an idle connection should not keep its last lines alive.
      if (conn.backlog === events) {
        conn.backlog = NO_EVENTS;
        conn.backlogAt = 0;
      }
    } finally {
      this.flushCounts();
    }
  }

  private flushCounts(): void {
    const { linesReceived } = this.metrics;
    if (this.varsLines) linesReceived.inc({ command: 'vars' }, this.varsLines);
    if (this.logsLines) linesReceived.inc({ command: 'logs' }, this.logsLines);
    if (this.verifyLines) linesReceived.inc({ command: 'verify' }, this.verifyLines);
    if (this.invalidLines) linesReceived.inc({ command: 'invalid' }, this.invalidLines);
    this.varsLines = this.logsLines = this.verifyLines = this.invalidLines = 0;
  }

  private handleLine(line: string, ctx: ActorContext<ConnectionMsg>): void | Promise<void> {
    const { conn, deps, metrics } = this;
    conn.linesIn += 1;
    if (deps.crashPrefix !== null && line.startsWith(deps.crashPrefix)) throw new Error(`fault injected by ${JSON.stringify(line.slice(0, 32))}`);
    const cmd = parseLine(line);
    if (cmd.kind === 'error') {
      this.invalidLines += 1;
      conn.error(cmd.code, cmd.message, metrics);
      return;
    }
    if (cmd.kind === 'vars') this.varsLines += 1;
    else if (cmd.kind === 'logs') this.logsLines += 1;
    else if (cmd.kind === 'verify') {
      this.verifyLines += 1;
      return this.verify(cmd, ctx);
    }
    const verified = conn.verified;
    if (!verified) return conn.error('not_verified', `send v:<apiKey> before ${cmd.kind === 'logs' ? 'l:' : cmd.kind === 'vars' ? 'i:' : 'd:'}`, metrics);
    if (cmd.apiKey !== verified.apiKey) return conn.error('key_mismatch', 'API key differs from the one this connection verified', metrics);
    // The verified key, not the line's equal copy: its hash is computed once, not per line.
    const { apiKey, deviceId } = verified;
    if (cmd.kind === 'labels') {
      conn.labels = cmd.labels;
      deps.onLabels?.(conn, cmd.labels);
      return;
    }
    if (cmd.kind === 'vars') {
      const verdict = deps.limits.admitVars(apiKey, cmd.vars);
      // Only a key whose names are not loaded (or are stale and a new name came) waits for the store.
      if ('then' in verdict) return verdict.then((v) => this.applyVars(apiKey, deviceId, v));
      return this.applyVars(apiKey, deviceId, verdict);
    }
    const { logs } = cmd;
    const allowed = deps.limits.admitLogs(apiKey, logs.length);
    if (allowed > 0) this.gateway.logs(apiKey, deviceId, allowed === logs.length ? logs : logs.slice(0, allowed));
    if (allowed < logs.length) {
      const { logsPerSecond } = deps.limits.cfg;
      conn.refuse('rate_limited', `${logs.length - allowed} of ${logs.length} logs dropped: the key is over ${logsPerSecond} logs/s`, metrics);
    }
  }

  /** Writes what the limits let through and says what they refused. */
  private applyVars(apiKey: string, deviceId: string | null, v: VarsVerdict): void {
    const { conn, metrics, deps } = this;
    // Refused by the gateway: the store is down and its retry queue is full.
    if (v.accepted.length > 0) {
      if (this.gateway.vars(apiKey, deviceId, v.accepted) === false) conn.write(UNAVAILABLE_REPLY);
      // The client actor answers a report that disagrees with an override (DESIGN.md §8).
      else deps.onReport?.(conn, v.accepted);
    }
    if (v.overCap === 0 && v.overRate === 0) return;
    // The first few names (JSON-quoted: a name may hold colons or spaces), so the developer knows which.
    const names = v.refusedNames.map((n) => JSON.stringify(n)).join(', ');
    const refused = (n: number): string => `${n} new variable${n === 1 ? '' : 's'} refused (${names})`;
    const { maxVarsPerKey, newVarsPerMinute } = deps.limits.cfg;
    if (v.overCap > 0) conn.refuse('too_many_vars', `${refused(v.overCap)}: the key has ${v.known} of ${maxVarsPerKey}`, metrics);
    if (v.overRate > 0) conn.refuse('too_many_new_vars', `${refused(v.overRate)}: over ${newVarsPerMinute} new variables per minute`, metrics);
  }

  private verify(cmd: Extract<Command, { kind: 'verify' }>, ctx: ActorContext<ConnectionMsg>): void | Promise<void> {
    const { conn, deps, metrics, gateway } = this;
    if (conn.verified) {
      if (conn.verified.apiKey !== cmd.apiKey) return conn.error('key_mismatch', 'this connection is already verified for another API key', metrics);
      conn.write(OK_REPLY);
      return;
    }
    const done = (ok: boolean): void => {
      if (conn.closed) return;
      if (!ok) return conn.error('unknown_api_key', 'API key is not registered', metrics);
      if (!conn.holdKeySlot(cmd.apiKey, deps.limits)) {
        metrics.protocolErrors.inc({ code: 'too_many_connections' });
        conn.write(errorReply({ code: 'too_many_connections', message: `connection limit of ${deps.limits.cfg.maxConnectionsPerKey} per API key reached; retry later` }));
        conn.close('too many connections for the API key');
        return;
      }
      conn.markVerified(cmd.apiKey, cmd.deviceId);
      conn.write(OK_REPLY);
      deps.onVerified(conn, ctx);
      gateway.device('connected', conn.device(deps.nodeId));
    };
    const ok = gateway.verifyKey(cmd.apiKey);
    if (typeof ok === 'boolean') return done(ok);
    return ok.then(done, (err: unknown) => {
      conn.error('unavailable', 'cannot verify the API key right now; retry', metrics);
      ctx.log.warn({ err }, 'verify failed');
    });
  }
}

/** The connection actor's behaviour for one connection. */
export function connectionBehaviour(conn: Connection, deps: ConnectionDeps) {
  return worker<State, ConnectionMsg>(new ConnectionActor(conn, deps));
}

let nextId = 0;

/** The child spec of one connection actor: transient, so a normal close removes it and a crash restarts it. */
export function connectionChildSpec(conn: Connection, deps: ConnectionDeps): ChildSpec {
  return { id: conn.id, restart: 'transient', type: 'worker', shutdown: 2000, start: connectionBehaviour(conn, deps) };
}

export function newConnectionId(): string {
  nextId += 1;
  return `conn-${nextId}`;
}

