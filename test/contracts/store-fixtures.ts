/**
 * The store configurations every store contract suite runs against (the Store contract and the §8
 * VariablesStore contract): one list, so a new configuration is tested by both.
 */
import { randomBytes } from 'node:crypto';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { sharedRedis, sharedRedisCluster, tempDir } from '../helpers/processes.js';
import { contractStoreConfig } from './store.contract.js';

export interface StoreFixtureOf<S> {
  store: S;
  cleanup(): Promise<void>;
}

export interface StoreConfiguration {
  name: string;
  start(): Promise<StoreFixtureOf<MemoryStore | RedisStore>>;
}

async function memory(dataDir: boolean, journalFsyncMs = contractStoreConfig.journalFsyncMs): Promise<StoreFixtureOf<MemoryStore>> {
  const dir = dataDir ? tempDir('observerio-store-') : null;
  const store = new MemoryStore({ ...contractStoreConfig, journalFsyncMs }, { dataDir: dir?.path ?? null });
  await store.start();
  return {
    store,
    cleanup: async () => {
      await store.stop();
      dir?.remove();
    },
  };
}

// Isolated by a fresh key prefix per store and fresh API keys per test, so a shared Redis needs no FLUSHDB.
async function redis(url: string): Promise<StoreFixtureOf<RedisStore>> {
  const store = new RedisStore(contractStoreConfig, { url, keyPrefix: `observerio-test-${randomBytes(4).toString('hex')}:` });
  await store.start();
  return { store, cleanup: () => store.stop() };
}

/** With a data dir every operation goes through the journal; on the cluster a script or MULTI spanning two slots would fail with CROSSSLOT. */
export const STORE_CONFIGURATIONS: readonly StoreConfiguration[] = [
  { name: 'MemoryStore', start: () => memory(true) },
  { name: 'MemoryStore (journalFsyncMs 0: every write fsynced before it resolves)', start: () => memory(true, 0) },
  { name: 'MemoryStore (no dataDir)', start: () => memory(false) },
  { name: 'RedisStore', start: async () => redis((await sharedRedis()).url) },
  { name: 'RedisStore (Redis Cluster)', start: async () => redis((await sharedRedisCluster()).url) },
];
