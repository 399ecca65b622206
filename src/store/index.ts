/**
 * Picks the Store from configuration: Redis when a URL is configured (several daemons can share it),
 * the embedded in-memory store with snapshots under dataDir otherwise.
 */
import type { Logger } from 'pino';
import type { StoreConfig } from '../config.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';
import type { VariablesStore } from '../variables/store-contract.js';
import type { Store } from './store.js';

export type { Store } from './store.js';
/** What both stores are: the Store and the §8 VariablesStore in one object (one connection, one journal). */
export type StoreWithVariables = Store & VariablesStore;

export interface StoreSettings {
  redisUrl: string | null;
  dataDir: string;
  store: StoreConfig;
}

export function resolveStore(cfg: StoreSettings, logger: Logger): StoreWithVariables {
  if (cfg.redisUrl) return new RedisStore(cfg.store, { url: cfg.redisUrl, logger: logger.child({ store: 'redis' }) });
  return new MemoryStore(cfg.store, { dataDir: cfg.dataDir, logger: logger.child({ store: 'memory' }) });
}
