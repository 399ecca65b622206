/**
 * The one place that turns `REDIS_URL` into an ioredis client: a plain `Redis` for `redis://` and
 * `rediss://`, a `Cluster` for `redis-cluster://h1:p1,h2:p2,...` (and `rediss-cluster://` for TLS).
 * The store and the pubsub both build their connections here, so both speak to the same deployment
 * the same way; config validation uses the same parser (./url.ts), so a malformed list is reported at
 * boot with the reason rather than as a connection error later.
 */
import type { Socket } from 'node:net';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { isClusterUrl, parseRedisUrl } from './url.js';

export { isClusterUrl, parseRedisUrl, redactRedisUrl, RedisUrlError, type RedisTarget } from './url.js';

/** Either client: they share the command interface the store and pubsub use. */
export type RedisClient = Redis | Cluster;

export interface ClientOptions {
  connectionName: string;
  connectTimeout?: number;
  maxRetriesPerRequest?: number | null;
  /** Delay before reconnect attempt `times`, or null to give up (the whole cluster, for a Cluster). */
  retryStrategy?: (times: number) => number | null;
  enableAutoPipelining?: boolean;
  /**
   * Plain Redis only: hold the writes of one turn of the event loop back until its check phase, so
   * they leave in one writev (coalesceWrites).
   */
  coalesceWrites?: boolean;
  autoResubscribe?: boolean;
  /**
   * Cluster only: route SSUBSCRIBE to one subscriber connection per master (ioredis ≥ 5.8), which
   * follows slot moves and failovers and subscribes again on the new master.
   */
  shardedSubscribers?: boolean;
}

/** A client for the URL, not yet connected (`lazyConnect`): the caller's start() connects it. */
export function createRedisClient(url: string, opts: ClientOptions): RedisClient {
  const target = parseRedisUrl(url);
  const node: RedisOptions = {
    connectionName: opts.connectionName,
    ...(opts.connectTimeout !== undefined && { connectTimeout: opts.connectTimeout }),
    ...(opts.maxRetriesPerRequest !== undefined && { maxRetriesPerRequest: opts.maxRetriesPerRequest }),
    ...(opts.autoResubscribe !== undefined && { autoResubscribe: opts.autoResubscribe }),
  };
  if (target.kind === 'single') {
    const redis = new Redis(target.url, {
      ...node,
      lazyConnect: true,
      ...(opts.retryStrategy && { retryStrategy: opts.retryStrategy }),
      ...(opts.enableAutoPipelining !== undefined && { enableAutoPipelining: opts.enableAutoPipelining }),
    });
    if (opts.coalesceWrites) coalesceWrites(redis);
    return redis;
  }
  const clusterOpts: ClusterOptions = {
    lazyConnect: true,
    redisOptions: {
      ...node,
      ...(target.username !== undefined && { username: target.username }),
      ...(target.password !== undefined && { password: target.password }),
      ...(target.tls && { tls: {} }),
    },
    ...(opts.retryStrategy && { clusterRetryStrategy: opts.retryStrategy }),
    ...(opts.enableAutoPipelining !== undefined && { enableAutoPipelining: opts.enableAutoPipelining }),
    ...(opts.shardedSubscribers && { shardedSubscribers: true }),
    // A failed-over master's slots move to its replica within cluster-node-timeout plus an election;
    // retrying CLUSTERDOWN replies for that long beats failing every command of the window at once.
    retryDelayOnClusterDown: 200,
    retryDelayOnFailover: 200,
    retryDelayOnTryAgain: 100,
  };
  return new Cluster(target.nodes, clusterOpts);
}

/**
 * Corks the client's socket at its first write in a turn of the event loop and uncorks it in the
 * check phase (setImmediate), so every MULTI and command written in that turn leaves in one writev.
 * ioredis writes each MULTI at once, and under a connection storm each is one socket's callback: the
 * connections bench's profile had write(2) to Redis at 15% of the daemon's CPU, a loopback write
 * costing far more than most commands do in Redis. Order is kept (one socket, one buffer). A command
 * waits for the rest of the current turn; one written by ioredis's auto-pipeline flush (an immediate
 * of its own) that runs after our uncork waits until the next turn's check phase.
 * Each new socket (a reconnect) is wrapped on 'connect'.
 */
function coalesceWrites(redis: Redis): void {
  redis.on('connect', () => {
    const stream = redis.stream as Socket;
    const write = stream.write;
    let corked = false;
    const uncork = (): void => {
      corked = false;
      stream.uncork();
    };
    stream.write = function (this: Socket, ...args: Parameters<Socket['write']>): boolean {
      if (!corked && !stream.destroyed) {
        corked = true;
        stream.cork();
        setImmediate(uncork);
      }
      return write.apply(this, args as never);
    } as Socket['write'];
  });
}

/**
 * AUTO_PIPELINING: whether a connection that coalesces its writes should also have ioredis's
 * auto-pipelining, which sends a tick's commands as one Pipeline: only on a cluster, which
 * coalesceWrites does not cover. On a plain Redis the cork already sends a turn's commands in one
 * writev, in the order issued (auto-pipelining sent a turn's MULTIs ahead of its plain commands, so
 * a read issued right after a write could miss it), and the Pipelines cost the latency tail: with a
 * Pipeline per device line (one PUBLISH and one EVALSHA each, 1,000 lines/s, `--trace-gc-nvp`),
 * every scavenge copied about 2 MB and promoted about all the previous one had copied (their objects
 * were still reachable half a second on), so each scavenge paused 4-9 ms and a mark-compact followed
 * every 2 s. Over the latency bench's two i: runs, side by side twice: 26.9 and 34.3 MB promoted with
 * auto-pipelining, 9.5 and 7.4 MB without; 21 and 23 scavenges against 17 and 17. A bare client
 * publishing 1,000/s showed the same: 2-3.5 MB survivors per scavenge with a Pipeline per message,
 * auto or explicit, 70 kB with plain commands.
 */
export function autoPipelining(url: string): boolean {
  return isClusterUrl(url);
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}
