/**
 * Picks the PubSub from configuration: Redis when a Redis URL is set (several daemons can share it),
 * otherwise the in-process one.
 */
import type { Logger } from 'pino';
import { LocalPubSub } from './local-pubsub.js';
import type { PubSub } from './pubsub.js';
import { RedisPubSub } from './redis-pubsub.js';

export type { Handler, PubSub, Unsubscribe } from './pubsub.js';
export { channels } from './pubsub.js';
export { UnserialisableMessageError } from './codec.js';
export { LocalPubSub } from './local-pubsub.js';
export { RedisPubSub } from './redis-pubsub.js';

export function resolvePubSub(cfg: { redisUrl: string | null }, logger: Logger): PubSub {
  const log = logger.child({ component: 'pubsub' });
  return cfg.redisUrl ? new RedisPubSub({ url: cfg.redisUrl, logger: log }) : new LocalPubSub({ logger: log });
}
