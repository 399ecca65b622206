/**
 * Runs the Store contract against every implementation: memory (with a data dir, so every operation
 * goes through the journal; once more fsyncing every write; and without a data dir), Redis, and a
 * Redis Cluster (three masters, where every multi-key script must stay within one slot).
 */
import { randomBytes } from 'node:crypto';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { sharedRedis, sharedRedisCluster, tempDir } from '../helpers/processes.js';
import { contractStoreConfig, storeContract } from './store.contract.js';

storeContract('MemoryStore', async () => {
  const dir = tempDir('observerio-store-');
  const store = new MemoryStore(contractStoreConfig, { dataDir: dir.path });
  await store.start();
  return {
    store,
    cleanup: async () => {
      await store.stop();
      dir.remove();
    },
  };
});

storeContract('MemoryStore (journalFsyncMs 0: every write fsynced before it resolves)', async () => {
  const dir = tempDir('observerio-store-');
  const store = new MemoryStore({ ...contractStoreConfig, journalFsyncMs: 0 }, { dataDir: dir.path });
  await store.start();
  return {
    store,
    cleanup: async () => {
      await store.stop();
      dir.remove();
    },
  };
});

storeContract('MemoryStore (no dataDir)', async () => {
  const store = new MemoryStore(contractStoreConfig, { dataDir: null });
  await store.start();
  return { store, cleanup: () => store.stop() };
});

// Isolated by a fresh key prefix per store and fresh API keys per test, so the shared Redis needs no FLUSHDB.
storeContract('RedisStore', async () => {
  const redis = await sharedRedis();
  const store = new RedisStore(contractStoreConfig, { url: redis.url, keyPrefix: `observerio-test-${randomBytes(4).toString('hex')}:` });
  await store.start();
  return { store, cleanup: () => store.stop() };
});

// The same on a real three-master Redis Cluster: a script or MULTI whose keys spanned two slots
// would fail here with CROSSSLOT, and the keys of one API key do spread over the masters otherwise.
storeContract('RedisStore (Redis Cluster)', async () => {
  const cluster = await sharedRedisCluster();
  const store = new RedisStore(contractStoreConfig, { url: cluster.url, keyPrefix: `observerio-test-${randomBytes(4).toString('hex')}:` });
  await store.start();
  return { store, cleanup: () => store.stop() };
});
