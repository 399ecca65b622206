/**
 * Which keys' logs are worth publishing for the dashboards' live tail (issue 14): a log published on
 * `<apiKey>:logs` that no dashboard on any node listens to costs the daemon its encoding and a
 * PUBLISH per tick (about a tenth of its busy time in the logs bench) for nothing.
 *
 * A node publishes a key's logs until a publish on `<apiKey>:logs` reaches no node (PubSub.publish
 * resolves 0): the key is then muted here, and its logs go to the index only. A node that opens a
 * dashboard feed for the key subscribes `<apiKey>:logs` first, then publishes a watch on
 * WATCH_CHANNEL and waits for every node that heard it (the PUBLISH's count) to acknowledge it; each
 * node unmutes the key before it acknowledges. So the feed is ready (the dashboard's `ready` frame)
 * only once every node publishes the key's logs again, and what "the tail since it opened" holds is:
 * every log any node's gateway accepts after the dashboard got `ready` reaches it, as before muting
 * existed (logs the gateway accepted earlier are in the index, which the dashboard reads after
 * `ready`).
 *
 * Races, and why they lose nothing:
 * - A publish that Redis ran before the feed's SUBSCRIBE answers 0, and that answer can arrive after
 *   the watch (another connection). Every watch heard bumps `epoch`; a 0 mutes only if no watch was
 *   heard since that publish was sent.
 * - A node whose subscription to WATCH_CHANNEL is not up could not hear a watch, so it mutes nothing
 *   (`listening` at the time of the publish is part of the condition).
 * - Pubsub is at-most-once: a watch lost to an outage would leave a key muted under an open feed, so
 *   nodes with a feed repeat their watches every `refreshMs` (without waiting for acks).
 * - A node that heard the watch but never acknowledges (it died; a foreign subscriber on a shared
 *   Redis) delays the feed's readiness by at most `ackTimeoutMs`, then it goes ahead, logged.
 */
import type { Logger } from 'pino';
import { LastingSubscription } from '../pubsub/lasting-subscription.js';
import type { PubSub } from '../pubsub/pubsub.js';

export const LOG_WATCH_CHANNEL = 'observerio:logs:watch';

/** The messages on LOG_WATCH_CHANNEL. */
export type LogWatchMessage = { type: 'watch'; apiKey: string; id: string } | { type: 'ack'; id: string };

/** Longest API key or watch id a watch message may carry; anything longer is not ours. */
const MAX_FIELD_CHARS = 256;

export interface LogTailOptions {
  pubsub: PubSub;
  logger: Logger;
  nodeId: string;
  /** How long watch() waits for the acknowledgements before it goes ahead. Default 2000. */
  ackTimeoutMs?: number;
  /** First delay before subscribing again after a failure; doubled up to 30 s. Default 500. */
  retryInitialMs?: number;
}

/** What a publish of a key's logs remembers, to judge its count when it comes back. */
export interface TailTicket {
  readonly epoch: number;
  readonly listening: boolean;
}

interface AckWait {
  wanted: number;
  got: number;
  resolve: () => void;
}

export class LogTail {
  private readonly muted = new Set<string>();
  /** Bumped by every watch heard (any key): a publish's 0 sent before it says nothing any more. */
  private epoch = 0;
  private listening = false;
  private readonly subscription: LastingSubscription;
  private seq = 0;
  private readonly acks = new Map<string, AckWait>();
  private readonly ackTimeoutMs: number;

  constructor(private readonly opts: LogTailOptions) {
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 2000;
    this.subscription = new LastingSubscription({
      pubsub: opts.pubsub,
      channel: LOG_WATCH_CHANNEL,
      handler: (m) => this.onMessage(m),
      logger: opts.logger,
      failureMessage: 'cannot subscribe to live-tail watches; publishing every log meanwhile',
      retryInitialMs: opts.retryInitialMs,
      onUp: () => (this.listening = true),
    });
  }

  /** Keys whose logs this node does not publish now (for tests and metrics). */
  get mutedKeys(): number {
    return this.muted.size;
  }

  /** Whether this node hears watches now (until then it mutes nothing). */
  get isListening(): boolean {
    return this.listening;
  }

  /**
   * Subscribes to WATCH_CHANNEL (once; retried in the background, as a pubsub down at boot must not
   * stop the daemon). Until it is up every key's logs are published, as before muting existed.
   */
  start(): Promise<void> {
    return this.subscription.start();
  }

  /** Unsubscribes; every key is published again (nobody could unmute one any more). */
  async stop(): Promise<void> {
    this.listening = false;
    this.muted.clear();
    for (const w of this.acks.values()) w.resolve();
    this.acks.clear();
    await this.subscription.stop();
  }

  /** Whether the key's logs are to be published now. */
  wanted(apiKey: string): boolean {
    return !this.muted.has(apiKey);
  }

  /** Taken just before publishing a key's logs; handed back to published() with the count. */
  ticket(): TailTicket {
    return { epoch: this.epoch, listening: this.listening };
  }

  /** A publish of the key's logs reached `nodes` nodes: none, and nothing since says otherwise, mutes it. */
  published(apiKey: string, ticket: TailTicket, nodes: number): void {
    if (nodes > 0 || !ticket.listening || !this.listening || ticket.epoch !== this.epoch) return;
    this.muted.add(apiKey);
  }

  /**
   * Tells every node that the key's logs are watched (call once subscribed to `<apiKey>:logs`) and
   * resolves once each node that heard it has unmuted the key, or after `ackTimeoutMs`. `wait: false`
   * only repeats the watch (a refresh). Rejects when the watch cannot be published.
   */
  async watch(apiKey: string, wait = true): Promise<void> {
    const id = `${this.opts.nodeId}-${(this.seq++).toString(36)}`;
    if (!wait) {
      await this.opts.pubsub.publish(LOG_WATCH_CHANNEL, { type: 'watch', apiKey, id } satisfies LogWatchMessage);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const w: AckWait = { wanted: Number.POSITIVE_INFINITY, got: 0, resolve: () => undefined };
    const acked = new Promise<void>((resolve) => (w.resolve = resolve));
    // Registered before the publish: an ack can come back before PUBLISH's own answer does.
    this.acks.set(id, w);
    try {
      const nodes = await this.opts.pubsub.publish(LOG_WATCH_CHANNEL, { type: 'watch', apiKey, id } satisfies LogWatchMessage);
      w.wanted = nodes;
      if (w.got >= w.wanted) return;
      const timedOut = await Promise.race([acked.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.ackTimeoutMs)))]);
      if (timedOut) this.opts.logger.warn({ apiKey, nodes, acks: w.got, timeoutMs: this.ackTimeoutMs }, 'not every node acknowledged a live-tail watch; the tail opens anyway');
    } finally {
      clearTimeout(timer);
      this.acks.delete(id);
    }
  }

  private onMessage(message: unknown): void {
    const m = parseWatchMessage(message);
    if (!m) {
      this.opts.logger.warn({ channel: LOG_WATCH_CHANNEL }, 'malformed live-tail watch message ignored');
      return;
    }
    if (m.type === 'ack') {
      const w = this.acks.get(m.id);
      if (w && ++w.got >= w.wanted) w.resolve();
      return;
    }
    this.epoch += 1;
    this.muted.delete(m.apiKey);
    // Only once the key is unmuted: the watcher's feed is ready when every node said so.
    this.opts.pubsub.publish(LOG_WATCH_CHANNEL, { type: 'ack', id: m.id } satisfies LogWatchMessage).catch((err: unknown) => {
      this.opts.logger.warn({ err }, 'cannot acknowledge a live-tail watch; the watcher goes ahead after its timeout');
    });
  }

}

/** A message of LOG_WATCH_CHANNEL as its shape says, or null (only a foreign publisher sends others). */
export function parseWatchMessage(m: unknown): LogWatchMessage | null {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return null;
  const o = m as { type?: unknown; apiKey?: unknown; id?: unknown };
  if (typeof o.id !== 'string' || o.id.length === 0 || o.id.length > MAX_FIELD_CHARS) return null;
  if (o.type === 'ack') return { type: 'ack', id: o.id };
  if (o.type !== 'watch' || typeof o.apiKey !== 'string' || o.apiKey.length === 0 || o.apiKey.length > MAX_FIELD_CHARS) return null;
  return { type: 'watch', apiKey: o.apiKey, id: o.id };
}
