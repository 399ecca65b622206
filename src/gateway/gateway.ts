/**
 * The gateway does what the protocol's commands mean: it verifies API keys, writes variables to the
 * store and logs to the index, and publishes both to the key's dashboard channels. Hot path: writes
 * for the same key within one tick coalesce into one store call and one published event.
 *
 * Variable writes go through a RetryQueue: one write per key in flight, and a write that cannot reach
 * the store (a Redis outage) waits in memory, collapsed per variable, until the store answers. Past
 * the queue's bound `vars()` refuses (the connection answers `e:unavailable`) instead of dropping.
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config.js';
import type { Metrics } from '../metrics.js';
import type { LogEntry, Var } from '../model.js';
import { EncodedMessage } from '../pubsub/codec.js';
import { channels, type PubSub } from '../pubsub/pubsub.js';
import type { Store } from '../store/store.js';
import type { ClientLog } from '../tcp/protocol.js';
import type { ChangeTimelineFields, DashboardEvent, DeviceInfo } from '../wire.js';
import { LogWatch } from './log-watch.js';
import { RetryQueue } from './retry-queue.js';

// Declared in wire.ts with the other shapes that leave the process; re-exported for the daemon's modules.

/**
 * Events of one channel published together (Gateway.publishMany); never sent to a dashboard as such.
 * `sizes`: the length of each event's JSON text, in order, so /ws can cut each frame out of the
 * message's text instead of decoding the events and encoding each again (eventsText).
 */
export interface DashboardEvents {
  type: 'events';
  sizes?: readonly number[];
  events: readonly DashboardEvent[];
}

/** How a DashboardEvents message's text begins: its frames' sizes come first (http/ws.ts cuts them out). */
export const EVENTS_HEAD = '{"type":"events","sizes":[';
export const EVENTS_LIST = ',"events":[';

/**
 * A DashboardEvents message as the text JSON.stringify would make of `{type, sizes, events}`: each
 * event encoded once, its text's length in `sizes`. A `null` for an event JSON cannot carry.
 */
export function eventsText(events: readonly DashboardEvent[]): string | null {
  const texts: string[] = new Array(events.length);
  for (let i = 0; i < events.length; i++) {
    const t = JSON.stringify(events[i]);
    if (t === undefined) return null;
    texts[i] = t;
  }
  return `${EVENTS_HEAD}${texts.map((t) => t.length).join(',')}]${EVENTS_LIST}${texts.join(',')}]}`;
}

export type { DashboardEvent, DeviceInfo };

/** Where logs go: the batching writer in front of the log index. */
export interface LogSink {
  append(entries: LogEntry[]): void;
}

export interface GatewayDeps {
  store: Store;
  pubsub: PubSub;
  logs: LogSink;
  metrics: Metrics;
  logger: Logger;
  nodeId: string;
  /** How long a verified key is trusted without asking the store again. */
  keyCacheMs?: number;
  /** The retry queue's bound and backoff (config `gateway`); default RETRY_DEFAULTS. */
  retry?: GatewayConfig;
  /** The live log tail's mute and ack wait (log-watch.ts defaults: 2,000 and 1,000 ms). */
  logWatch?: { muteMs?: number; ackTimeoutMs?: number };
}

/** The defaults of config/default.json, for gateways built without a config (tests). */
export const RETRY_DEFAULTS: GatewayConfig = { retryMaxVars: 100_000, retryMaxBytes: 32 * 1024 * 1024, retryInitialMs: 100, retryMaxMs: 2000 };

/** What a waiting variable holds: its strings, plus the map entry and object around them. */
export function varBytes(v: Var): number {
  return 2 * (v.name.length + v.type.length + v.value.length) + 64;
}

const NO_DEVICE = '\u0000';

/** Pending per API key, then per device (NO_DEVICE for none): no key string is built per line. */
type ByKeyAndDevice<T> = Map<string, Map<string, T>>;

function slot<T>(m: ByKeyAndDevice<T>, apiKey: string, deviceId: string | null, create: () => T): T {
  let forKey = m.get(apiKey);
  if (!forKey) m.set(apiKey, (forKey = new Map()));
  const device = deviceId ?? NO_DEVICE;
  let v = forKey.get(device);
  if (v === undefined) forKey.set(device, (v = create()));
  return v;
}

export class Gateway {
  private readonly verified = new Map<string, number>();
  private pendingVars = new Map<string, Map<string, Var>>();
  private pendingVarEvents: ByKeyAndDevice<Map<string, Var>> = new Map();
  private pendingLogEvents: ByKeyAndDevice<LogEntry[]> = new Map();
  private scheduled = false;
  private inFlight = new Set<Promise<unknown>>();
  private seq = 0;
  private readonly keyCacheMs: number;
  private readonly writes: RetryQueue<Var>;
  /** Whether each key's live log tail has a watcher anywhere (log-watch.ts). */
  private readonly logWatch: LogWatch;

  constructor(private readonly deps: GatewayDeps) {
    this.keyCacheMs = deps.keyCacheMs ?? 60_000;
    this.logWatch = new LogWatch({ pubsub: deps.pubsub, nodeId: deps.nodeId, logger: deps.logger, ...deps.logWatch });
    const retry = deps.retry ?? RETRY_DEFAULTS;
    const { metrics, logger } = deps;
    this.writes = new RetryQueue<Var>({
      write: (apiKey, vars) => deps.store.setVars(apiKey, vars),
      id: (v) => v.name,
      bytes: varBytes,
      maxItems: retry.retryMaxVars,
      maxBytes: retry.retryMaxBytes,
      initialBackoffMs: retry.retryInitialMs,
      maxBackoffMs: retry.retryMaxMs,
      onRetry: (apiKey, vars, attempt, err) => {
        metrics.writesRetried.inc();
        // The first failure of a key is news; the next ones are the same outage.
        if (attempt === 1) logger.warn({ err, apiKey, vars }, 'gateway write failed to reach the store; queued for a retry');
      },
      onDrop: (apiKey, vars, err) => {
        metrics.varsDropped.inc(vars);
        logger.error({ err, apiKey, vars }, 'gateway write failed');
      },
      onSize: (vars, bytes) => {
        metrics.retryQueueVars.set(vars);
        metrics.retryQueueBytes.set(bytes);
      },
    });
  }

  /** Variable changes waiting in memory for the store to answer again (0 while it does). */
  retryQueued(): { vars: number; bytes: number; keys: number } {
    return { vars: this.writes.items, bytes: this.writes.bytes, keys: this.writes.keysWaiting };
  }

  /** True when the key is registered; answers from a short-lived cache so reconnect storms stay cheap. */
  verifyKey(apiKey: string): boolean | Promise<boolean> {
    const until = this.verified.get(apiKey);
    if (until !== undefined && until > Date.now()) return true;
    return this.deps.store.verifyApiKey(apiKey).then((ok) => {
      if (ok) this.verified.set(apiKey, Date.now() + this.keyCacheMs);
      return ok;
    });
  }

  /**
   * Accepts a device's variable changes; false when they are refused because the store is unreachable
   * and the retry queue is full (nothing of them is kept: the device is to be told).
   */
  vars(apiKey: string, deviceId: string | null, vars: readonly Var[]): boolean {
    if (vars.length === 0) return true;
    if (this.writes.wouldGrow(apiKey, vars)) {
      this.deps.metrics.varsRefused.inc();
      return false;
    }
    let forKey = this.pendingVars.get(apiKey);
    if (!forKey) this.pendingVars.set(apiKey, (forKey = new Map()));
    const forEvent = slot(this.pendingVarEvents, apiKey, deviceId, () => new Map<string, Var>());
    for (const v of vars) {
      // Re-inserting moves nothing: a Map keeps first-seen order, which the store's layout wants.
      forKey.set(v.name, v);
      forEvent.set(v.name, v);
    }
    this.schedule();
    return true;
  }

  logs(apiKey: string, deviceId: string | null, logs: readonly ClientLog[]): void {
    if (logs.length === 0) return;
    const receivedAt = Date.now();
    const entries: LogEntry[] = new Array(logs.length);
    for (let i = 0; i < logs.length; i++) {
      const { message, level, timestamp, ...fields } = logs[i] as ClientLog;
      entries[i] = {
        id: `${receivedAt}-${this.deps.nodeId}-${(this.seq++).toString(36)}`,
        apiKey,
        deviceId,
        level: level ?? 'info',
        message,
        timestamp: timestamp ?? null,
        receivedAt,
        fields,
      };
    }
    this.deps.metrics.logsReceived.inc(entries.length);
    this.deps.logs.append(entries);
    const pending = slot(this.pendingLogEvents, apiKey, deviceId, () => entries);
    if (pending !== entries) for (const e of entries) pending.push(e);
    this.schedule();
  }

  /**
   * Changes that reached a device, as entries of its log timeline (DESIGN.md §8): indexed beside its
   * logs, kind `change` in their fields, and shown live to the key's dashboards like any log.
   */
  timeline(apiKey: string, deviceId: string, changes: ReadonlyArray<{ message: string; fields: ChangeTimelineFields }>): void {
    if (changes.length === 0) return;
    const receivedAt = Date.now();
    const entries: LogEntry[] = changes.map((c) => ({
      id: `${receivedAt}-${this.deps.nodeId}-${(this.seq++).toString(36)}`,
      apiKey,
      deviceId,
      level: 'info',
      message: c.message,
      timestamp: null,
      receivedAt,
      fields: { ...c.fields },
      kind: 'change' as const,
    }));
    this.deps.logs.append(entries);
    this.publishLogs(apiKey, deviceId, entries);
  }

  /**
   * Resolves once every node publishes the key's live logs (a dashboard feed, after subscribing to
   * them, before its `ready`): a key nobody watched is muted (log-watch.ts).
   */
  watchLogs(apiKey: string): Promise<void> {
    return this.logWatch.watch(apiKey);
  }

  /** Keys whose live logs this node does not publish now, as nobody watches them. */
  get unwatchedLogKeys(): number {
    return this.logWatch.mutedKeys;
  }

  device(event: 'connected' | 'disconnected', device: DeviceInfo): void {
    this.publish(channels.devices(device.apiKey), { type: 'device', event, device }, 'device');
  }

  /** A key's logs to its dashboards, unless nobody watches them (log-watch.ts). */
  private publishLogs(apiKey: string, deviceId: string | null, logs: LogEntry[]): void {
    if (!this.logWatch.live(apiKey)) return;
    this.deps.metrics.messagesPublished.inc({ kind: 'logs' });
    const mark = this.logWatch.mark;
    this.track(this.deps.pubsub.publish(channels.logs(apiKey), { type: 'logs', apiKey, deviceId, logs } satisfies DashboardEvent).then((nodes) => this.logWatch.reached(apiKey, mark, nodes)));
  }

  publish(channel: string, event: DashboardEvent, kind: string): void {
    this.deps.metrics.messagesPublished.inc({ kind });
    this.track(this.deps.pubsub.publish(channel, event));
  }

  /**
   * Several events of one channel, in order, as one pubsub message (`DashboardEvents`, which /ws
   * unpacks into one frame each): the events of a batch of changes cost one publish, not one each.
   */
  publishMany(channel: string, events: readonly DashboardEvent[]): void {
    if (events.length === 0) return;
    if (events.length === 1) return this.publish(channel, events[0] as DashboardEvent, (events[0] as DashboardEvent).type);
    this.deps.metrics.messagesPublished.inc({ kind: 'events' });
    let text: string | null;
    try {
      text = eventsText(events);
    } catch {
      // A cycle or a BigInt: the pubsub's own encoding says so, as it always did.
      text = null;
    }
    this.track(this.deps.pubsub.publish(channel, text === null ? ({ type: 'events', events } satisfies DashboardEvents) : new EncodedMessage(text)));
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flushTick());
  }

  private flushTick(): void {
    this.scheduled = false;
    const vars = this.pendingVars;
    const varEvents = this.pendingVarEvents;
    const logEvents = this.pendingLogEvents;
    this.pendingVars = new Map();
    this.pendingVarEvents = new Map();
    this.pendingLogEvents = new Map();
    for (const [apiKey, byName] of vars) {
      this.deps.metrics.varsWritten.inc(byName.size);
      this.writes.submit(apiKey, byName);
    }
    for (const [apiKey, byDevice] of varEvents) {
      for (const [device, byName] of byDevice) {
        this.publish(channels.vars(apiKey), { type: 'vars', apiKey, deviceId: device === NO_DEVICE ? null : device, vars: [...byName.values()] }, 'vars');
      }
    }
    for (const [apiKey, byDevice] of logEvents) {
      for (const [device, logs] of byDevice) this.publishLogs(apiKey, device === NO_DEVICE ? null : device, logs);
    }
  }

  private track(p: Promise<unknown>): void {
    this.inFlight.add(p);
    p.then(
      () => this.inFlight.delete(p),
      (err: unknown) => {
        this.inFlight.delete(p);
        this.deps.logger.error({ err }, 'gateway write failed');
      },
    );
  }

  /**
   * Writes everything pending, gives queued writes one more attempt and waits for writes in flight
   * (shutdown, tests). Writes that still cannot reach the store stay queued.
   */
  async flush(): Promise<void> {
    if (this.scheduled) this.flushTick();
    await this.writes.flush();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }
}
