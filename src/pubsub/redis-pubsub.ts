/**
 * The PubSub that carries gateway channels between daemons sharing one Redis (DESIGN.md §6). Each
 * instance holds one publisher and one subscriber connection and fans messages out to its local
 * handlers itself, so Redis sees one SUBSCRIBE per channel however many handlers listen here.
 *
 * Redis pub/sub is at-most-once: a message published while this node's subscriber connection is
 * down is lost for this node. ioredis re-subscribes every channel when the connection comes back
 * (`autoResubscribe`, on by default and verified by the Redis-only tests); when the pubsub worker
 * restarts, stop() closes both connections and start() opens new ones and subscribes again itself.
 *
 * On Redis Cluster (a `redis-cluster://` URL) channels are sharded: SSUBSCRIBE/SPUBLISH (Redis 7),
 * so a message travels only within the shard that owns the channel's slot instead of over every
 * node's cluster bus, and SPUBLISH's count is what publish() promises: classic PUBLISH on a cluster
 * counts only the subscribers connected to the node that took the PUBLISH, while ioredis's sharded
 * subscribers connect to the master owning the slot, the very node SPUBLISH goes to. ioredis keeps
 * one subscriber connection per master, and after a failover or slot move subscribes again on the
 * new owner (its ClusterSubscriberGroup). Until then a publish counts 0, as during a plain outage.
 *
 * This node's own messages short-circuit Redis (as Phoenix.PubSub delivers locally): publish() hands
 * the encoded text to this node's handlers through a local FIFO (asynchronously, decoded once for
 * them all, the copy shared and read-only) and still PUBLISHes it for the other nodes, prefixed with this instance's origin mark
 * (./codec.ts). When that PUBLISH comes back on our subscriber connection, a compare of its first bytes drops it
 * without decoding; a payload without our mark (another node, an older version, redis-cli) is decoded
 * and delivered as before. What holds:
 * - publish() resolves with PUBLISH/SPUBLISH's count, as before: this node's subscriber connection
 *   is still subscribed and still counted (var-changes waits for that many acks, this node's included).
 * - Redis down: publish() rejects as before, and nothing is delivered locally: when the publisher
 *   connection is not ready, the local delivery waits in the FIFO for PUBLISH's reply and is dropped
 *   if it fails (messages behind it wait too, so local order holds). Only a connection that breaks
 *   with the PUBLISH already written can deliver locally and then reject (ioredis resends it after a
 *   reconnect, so that mostly ends resolved).
 * - Order: this node's messages reach its handlers in its publish order (one FIFO for all channels).
 *   Between nodes there is no order: one Redis (one shard per channel) used to give every node the
 *   same interleaving, now each node sees its own message where it published it. Nothing depends on
 *   that interleaving, which was never the commit order of two nodes' changes either: client actors
 *   treat a `vars:callback` message as a cue and read the overrides from the store, VarChanges drops
 *   an older overrides list per node by history id, and dashboards re-read on `history` events.
 * - subscribe(): a handler is in the local list before SUBSCRIBE is sent, and a local delivery's
 *   recipients are fixed at publish(), so a message published after subscribe() resolves reaches it.
 * - Stop: deliveries already queued still happen (the handlers are kept across a restart).
 */
import { autoPipelining, createRedisClient, isCluster, type ClientOptions, type RedisClient } from '../redis/connect.js';
import type { Logger } from 'pino';
import type { BackendHealth } from '../model.js';
import { encodeMessage, newOriginMark } from './codec.js';
import type { Handler, PubSub, TextHandler, Unsubscribe } from './pubsub.js';
import { DeliveryQueue, deliver, Subscribers, type QueuedDelivery } from './subscribers.js';

export interface RedisPubSubOptions {
  url: string;
  logger?: Logger;
}

interface ChannelState {
  /** Whether Redis has confirmed our SUBSCRIBE (and not since our UNSUBSCRIBE). */
  subscribed: boolean;
  /** SUBSCRIBE/UNSUBSCRIBE for one channel run one after another, never interleaved. */
  ops: Promise<void>;
}

const HEALTH_TIMEOUT_MS = 2000;
const QUIT_TIMEOUT_MS = 1000;

export class RedisPubSub implements PubSub {
  readonly kind = 'redis' as const;
  private readonly logger: Logger | undefined;
  private pub: RedisClient;
  private sub: RedisClient;
  /** Sharded channels (SSUBSCRIBE/SPUBLISH): on a cluster. */
  private readonly sharded: boolean;
  /** The local handlers: kept across stop() and start(), which restores their SUBSCRIBEs. */
  private readonly subscribers = new Subscribers();
  /** SUBSCRIBE state on the current subscriber connection; starts empty with each connection. */
  private readonly channels = new Map<string, ChannelState>();
  private stopped = false;
  /** Set by stop(): the next start() opens new connections. */
  private closed = false;
  private everStarted = false;
  /** Prefixed to every payload this instance publishes, so its echo from Redis is recognised. */
  private readonly origin = newOriginMark();
  private readonly originBytes = Buffer.from(this.origin, 'latin1');
  /** This node's own messages on their way to its handlers (one FIFO for all channels, as in LocalPubSub). */
  private readonly local: DeliveryQueue;

  constructor(private readonly opts: RedisPubSubOptions) {
    this.logger = opts.logger;
    this.local = new DeliveryQueue(this.logger);
    [this.pub, this.sub] = this.connections();
    this.sharded = isCluster(this.sub);
  }

  /** A fresh publisher and subscriber, not yet connected: one pair per incarnation of the pubsub worker. */
  private connections(): [RedisClient, RedisClient] {
    // Not connected until start() (lazyConnect), as a child spec's start should.
    const common: Omit<ClientOptions, 'connectionName'> = { autoResubscribe: true };
    // Every PUBLISH issued in one tick leaves in one write, in order: on a plain Redis by
    // coalesceWrites alone, on a cluster (which it does not cover) by ioredis's auto-pipelining.
    // Auto-pipelining is off where coalesceWrites does that work: its Pipeline objects were still
    // reachable at the next scavenge (promotion ≈ 99% of what survived), so one PUBLISH per device
    // line made every scavenge copy 2 MB and a mark-compact follow every 2 s (AUTO_PIPELINING).
    const pub = createRedisClient(this.opts.url, { ...common, connectionName: 'observerio:pubsub:pub', enableAutoPipelining: autoPipelining(this.opts.url), coalesceWrites: true });
    const sub = createRedisClient(this.opts.url, { ...common, connectionName: 'observerio:pubsub:sub', shardedSubscribers: true });
    this.watch(pub, 'publisher');
    this.watch(sub, 'subscriber');
    // The payload as the bytes Redis sent: our own echo is recognised on them and dropped undecoded
    // (ioredis skips its toString when nothing listens to 'message'; a thousand-override event is
    // 120 kB). Cluster subscribers decode anyway; the buffer events carry the same payloads.
    const onMessage = (channel: Buffer, payload: Buffer) => {
      // Our own message, already delivered here by publish().
      if (payload.length >= this.originBytes.length && payload.compare(this.originBytes, 0, this.originBytes.length, 0, this.originBytes.length) === 0) return;
      const name = channel.toString('utf8');
      deliver(this.subscribers.of(name), name, payload.toString('utf8'), this.logger);
    };
    sub.on(isCluster(sub) ? 'smessageBuffer' : 'messageBuffer', onMessage);
    return [pub, sub];
  }

  /**
   * Connects, and subscribes again every channel that has local handlers (a restart of the pubsub
   * worker keeps its subscribers), before resolving. The first start fails fast when Redis is
   * unreachable; a later one still rejects, but leaves ioredis reconnecting, with the SUBSCRIBEs
   * queued, so a restart during an outage recovers by itself.
   */
  async start(): Promise<void> {
    if (this.closed) {
      [this.pub, this.sub] = this.connections();
      this.closed = false;
    }
    this.stopped = false;
    const connecting = Promise.all([connect(this.pub), connect(this.sub)]);
    // Issued while connecting, so they wait in ioredis's queue and leave as soon as the connection is up.
    const resubscribed = this.subscribers.channels().map((channel) => this.reconcile(channel));
    try {
      await connecting;
    } catch (err) {
      for (const r of resubscribed) r.catch(() => undefined);
      // Without this, ioredis would keep retrying in the background of a first start that failed.
      if (!this.everStarted) {
        this.pub.disconnect();
        this.sub.disconnect();
      }
      throw new Error(`pubsub: cannot connect to Redis: ${(err as Error).message}`, { cause: err });
    }
    await Promise.all(resubscribed);
    this.everStarted = true;
  }

  /** Closes this incarnation's connections; the local handlers stay for the next start(). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.closed = true;
    this.channels.clear();
    await Promise.all([close(this.pub), close(this.sub)]);
  }

  async health(): Promise<BackendHealth> {
    if (this.stopped) return { ok: false, kind: this.kind, detail: 'stopped' };
    // A PING on a connection that is down would wait in ioredis's offline queue; answer at once.
    if (this.pub.status !== 'ready') return { ok: false, kind: this.kind, detail: `publisher connection ${this.pub.status}` };
    try {
      await withTimeout(this.pub.ping(), HEALTH_TIMEOUT_MS, 'PING timed out');
    } catch (err) {
      return { ok: false, kind: this.kind, detail: `publisher: ${(err as Error).message}` };
    }
    if (this.sub.status !== 'ready') return { ok: false, kind: this.kind, detail: `subscriber connection ${this.sub.status}` };
    return { ok: true, kind: this.kind };
  }

  subscribe(channel: string, handler: Handler): Promise<Unsubscribe> {
    return this.add(channel, handler, null);
  }

  subscribeText(channel: string, handler: TextHandler): Promise<Unsubscribe> {
    return this.add(channel, null, handler);
  }

  private async add(channel: string, handler: Handler | null, onText: TextHandler | null): Promise<Unsubscribe> {
    if (this.stopped) throw new Error(`pubsub is stopped; cannot subscribe to ${channel}`);
    const sub = this.subscribers.add(channel, handler, onText);
    try {
      await this.reconcile(channel);
    } catch (err) {
      this.subscribers.remove(sub);
      throw new Error(`pubsub: SUBSCRIBE ${channel} failed: ${(err as Error).message}`, { cause: err });
    }
    return async () => {
      if (!sub.active) return;
      this.subscribers.remove(sub);
      if (!this.stopped) await this.reconcile(channel);
    };
  }

  async publish(channel: string, message: unknown): Promise<number> {
    if (this.stopped) throw new Error(`pubsub is stopped; cannot publish on ${channel}`);
    const text = encodeMessage(channel, message);
    const payload = this.origin + text;
    const sent = this.sharded ? this.pub.spublish(channel, payload).then(Number) : this.pub.publish(channel, payload);
    // Fixed now, as Redis fixes them when it runs the PUBLISH: a handler subscribing later misses it.
    const recipients = this.subscribers.of(channel);
    if (recipients.length > 0) {
      // A ready publisher almost always gets its PUBLISH through; otherwise (an outage, a reconnect)
      // deliver only once Redis has taken it, so a publish that rejects delivered nothing.
      const item: QueuedDelivery = { channel, text, recipients, state: this.pub.status === 'ready' ? 'open' : 'waiting' };
      if (item.state === 'waiting') {
        sent.then(
          () => {
            item.state = 'open';
            this.local.wake();
          },
          () => {
            item.state = 'failed';
            this.local.wake();
          },
        );
      }
      this.local.push(item);
    }
    return sent;
  }

  /**
   * Brings Redis in line with the local handlers: SUBSCRIBE when the channel has handlers and is not
   * subscribed, UNSUBSCRIBE when it has none. Queued per channel, so a subscribe racing the last
   * unsubscribe ends in whatever state the handlers call for when its turn comes.
   */
  private reconcile(channel: string): Promise<void> {
    let state = this.channels.get(channel);
    if (!state) {
      state = { subscribed: false, ops: Promise.resolve() };
      this.channels.set(channel, state);
    }
    const s = state;
    const op = s.ops.then(async () => {
      const wanted = this.subscribers.count(channel) > 0;
      if (wanted && !s.subscribed) {
        await (this.sharded ? this.sub.ssubscribe(channel) : this.sub.subscribe(channel));
        s.subscribed = true;
      } else if (!wanted && s.subscribed) {
        await (this.sharded ? this.sub.sunsubscribe(channel) : this.sub.unsubscribe(channel));
        s.subscribed = false;
      }
    });
    const tail = op.then(
      () => undefined,
      () => undefined,
    );
    s.ops = tail;
    void tail.then(() => {
      if (s.ops === tail && !s.subscribed && this.subscribers.count(channel) === 0 && this.channels.get(channel) === s) this.channels.delete(channel);
    });
    return op;
  }

  private watch(conn: RedisClient, role: string): void {
    // ioredis emits 'error' for every failed reconnect attempt; one warning per outage is enough.
    let down = false;
    conn.on('error', (err: Error) => {
      if (down) this.logger?.debug({ err, role }, 'pubsub Redis connection error');
      else this.logger?.warn({ err, role }, 'pubsub Redis connection error; reconnecting');
      down = true;
    });
    conn.on('ready', () => {
      if (down) this.logger?.info({ role }, 'pubsub Redis connection restored');
      down = false;
    });
  }
}

async function connect(conn: RedisClient): Promise<void> {
  if (conn.status === 'wait' || conn.status === 'end') await conn.connect();
}

async function close(conn: RedisClient): Promise<void> {
  if (conn.status === 'end') return;
  if (conn.status === 'ready') {
    try {
      await withTimeout(conn.quit(), QUIT_TIMEOUT_MS, 'QUIT timed out');
      return;
    } catch {
      // fall through: the connection is going away either way
    }
  }
  conn.disconnect();
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
