/**
 * The live log tail is published only while someone watches it (issue 14, logs). Every log a
 * device sends went out on `<apiKey>:logs` whether or not a dashboard was open; in the logs
 * benchmark, where nobody watches, muting it took the daemon from 24–29% to 21–24% of a core at
 * 20,000 logs/s and Redis from 1.1% to 0.2% (no change to the Meilisearch ratio).
 *
 * - A publish of a key's logs that reached no node (PUBLISH's count, or the local pubsub's) mutes
 *   the key on this node: its logs are not published for `muteMs`; then one is, which mutes it again
 *   while still nobody listens, so a missed unmute costs at most `muteMs` of live tail.
 * - A dashboard feed that starts on some node (http/ws.ts KeyFeeds) subscribes to the key's channels
 *   first, then calls watch(): it broadcasts the key on LOG_WATCH_CHANNEL, every node unmutes it and
 *   acks, and watch() resolves once every node that heard it has acked (or after `ackTimeoutMs`),
 *   before the dashboard gets its `ready`. From then on every publish reaches it, so no node mutes
 *   the key again while it is watched.
 * - A publish that reached nobody mutes nothing if a watch (of any key: watches are rare) arrived
 *   between its leaving and its answer: it may have run before that watcher subscribed.
 * - Nothing mutes until this node listens on LOG_WATCH_CHANNEL, so a node that cannot hear watches
 *   publishes every log, as before.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { PubSub } from '../pubsub/pubsub.js';

/** Where dashboards' watches are broadcast to every node. */
export const LOG_WATCH_CHANNEL = 'observerio:logs:watch';
const ACK_PREFIX = 'observerio:logs:watch-acks:';

/** This node's channel for the acks of its watches. */
export function logWatchAckChannel(nodeId: string): string {
  return `${ACK_PREFIX}${nodeId}`;
}

interface WatchMessage {
  apiKey: string;
  requestId: string;
  replyTo: string;
}

/** Longer fields than these are no message of ours (API keys and node ids are far shorter). */
const MAX_FIELD = 256;

const shortString = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_FIELD;

function isWatch(m: unknown): m is WatchMessage {
  if (typeof m !== 'object' || m === null) return false;
  const w = m as Record<string, unknown>;
  // An ack only ever goes to a node's ack channel: a forged watch cannot make nodes publish elsewhere.
  return shortString(w.apiKey) && shortString(w.requestId) && shortString(w.replyTo) && w.replyTo.startsWith(ACK_PREFIX);
}

function ackId(m: unknown): string | null {
  if (typeof m !== 'object' || m === null) return null;
  const id = (m as Record<string, unknown>).requestId;
  return shortString(id) ? id : null;
}

export interface LogWatchOptions {
  pubsub: PubSub;
  nodeId: string;
  logger: Logger;
  /** How long a key whose logs reached nobody stays muted before one is published again. Default 2,000. */
  muteMs?: number;
  /** How long watch() waits for the nodes' acks. Default 1,000. */
  ackTimeoutMs?: number;
  /** Keys muted at once, at most; past it, further keys are published as before. Default 100,000. */
  maxMuted?: number;
}

interface Waiting {
  expected: number;
  received: number;
  done: () => void;
}

export class LogWatch {
  /** Muted keys → performance.now() until which their logs are not published. */
  private readonly muted = new Map<string, number>();
  /** Watches heard so far; a publish's answer mutes only if none came since it left. */
  private watches = 0;
  private listening: Promise<void> | null = null;
  private heard = false;
  private warned = false;
  private readonly waiting = new Map<string, Waiting>();
  private readonly replyTo: string;
  private readonly prefix = randomBytes(6).toString('base64url');
  private seq = 0;
  private readonly muteMs: number;
  private readonly ackTimeoutMs: number;
  private readonly maxMuted: number;

  constructor(private readonly opts: LogWatchOptions) {
    this.replyTo = logWatchAckChannel(opts.nodeId);
    this.muteMs = opts.muteMs ?? 2000;
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 1000;
    this.maxMuted = opts.maxMuted ?? 100_000;
  }

  /** Whether the key's logs are to be published now. */
  live(apiKey: string): boolean {
    const until = this.muted.get(apiKey);
    if (until === undefined) return true;
    if (performance.now() < until) return false;
    this.muted.delete(apiKey);
    return true;
  }

  /** Taken as a publish leaves; handed back to reached() with its answer. */
  get mark(): number {
    return this.watches;
  }

  /** A publish of the key's logs, which left at `mark`, reached `nodes` nodes. */
  reached(apiKey: string, mark: number, nodes: number): void {
    if (nodes > 0) return;
    if (!this.heard) {
      // Nobody listens and this node cannot yet hear a watch: start listening, mute from then on.
      this.listen().catch(() => undefined);
      return;
    }
    if (mark !== this.watches) return;
    const now = performance.now();
    // A key that stopped logging keeps its entry until it is looked at again: past the bound, the
    // ended mutes go first, so the map does not fill with them and stop muting new keys.
    if (this.muted.size >= this.maxMuted) for (const [key, until] of this.muted) if (until <= now) this.muted.delete(key);
    if (this.muted.size >= this.maxMuted) return;
    this.muted.set(apiKey, now + this.muteMs);
  }

  /** Keys muted on this node now (tests). */
  get mutedKeys(): number {
    return this.muted.size;
  }

  /**
   * Tells every node to publish the key's logs again, and resolves once every node that heard it has
   * (or after ackTimeoutMs, logged). Called after the caller has subscribed to the key's logs.
   */
  async watch(apiKey: string): Promise<void> {
    this.unmute(apiKey);
    await this.listen();
    const requestId = `${this.prefix}.${(this.seq += 1)}`;
    const acked = new Promise<void>((done) => this.waiting.set(requestId, { expected: Infinity, received: 0, done }));
    let nodes: number;
    try {
      nodes = await this.opts.pubsub.publish(LOG_WATCH_CHANNEL, { apiKey, requestId, replyTo: this.replyTo } satisfies WatchMessage);
    } catch (err) {
      this.waiting.delete(requestId);
      throw err;
    }
    const w = this.waiting.get(requestId);
    if (w) {
      w.expected = nodes;
      if (w.received >= nodes) this.settle(requestId);
      else
        setTimeout(() => {
          const left = this.waiting.get(requestId);
          if (!left) return;
          this.opts.logger.warn({ apiKey, nodes, acked: left.received }, 'not every node acknowledged a log watch in time; the live tail of the silent ones may lag until their mute ends');
          this.settle(requestId);
        }, this.ackTimeoutMs).unref();
    }
    await acked;
  }

  /** Subscribes to the watch channel and this node's ack channel, once; a failed attempt is retried by the next call. */
  private listen(): Promise<void> {
    if (!this.listening) {
      const { pubsub } = this.opts;
      // For the process's life, as the gateway's: the pubsub keeps its handlers across its restarts.
      const p = Promise.all([pubsub.subscribe(LOG_WATCH_CHANNEL, (m) => this.onWatch(m)), pubsub.subscribe(this.replyTo, (m) => this.onAck(m))]).then(
        () => {
          this.heard = true;
          this.warned = false;
        },
        (err: unknown) => {
          if (this.listening === p) this.listening = null;
          // Tried again on the next log nobody got: one warning per outage, not one per log.
          if (!this.warned) this.opts.logger.warn({ err }, 'cannot subscribe to the log watch channels; every log is published meanwhile');
          this.warned = true;
          throw err;
        },
      );
      this.listening = p;
    }
    return this.listening;
  }

  private unmute(apiKey: string): void {
    this.watches += 1;
    this.muted.delete(apiKey);
  }

  private onWatch(message: unknown): void {
    if (!isWatch(message)) return;
    this.unmute(message.apiKey);
    this.opts.pubsub.publish(message.replyTo, { requestId: message.requestId }).catch((err: unknown) => this.opts.logger.debug({ err }, 'cannot acknowledge a log watch'));
  }

  private onAck(message: unknown): void {
    const id = ackId(message);
    const w = id === null ? undefined : this.waiting.get(id);
    if (!w || id === null) return;
    w.received += 1;
    if (w.received >= w.expected) this.settle(id);
  }

  private settle(requestId: string): void {
    const w = this.waiting.get(requestId);
    if (!w) return;
    this.waiting.delete(requestId);
    w.done();
  }
}
