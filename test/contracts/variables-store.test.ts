/**
 * Runs the VariablesStore contract against every implementation: memory (with a data dir, so every
 * operation goes through the journal, and without one) and Redis.
 */
import { MemoryStore } from '../../src/store/memory-store.js';
import { tempDir } from '../helpers/processes.js';
import { contractStoreConfig } from './store.contract.js';
import { variablesStoreContract } from './variables-store.contract.js';

variablesStoreContract('MemoryStore', async () => {
  const dir = tempDir('observerio-vstore-');
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

variablesStoreContract('MemoryStore (no dataDir)', async () => {
  const store = new MemoryStore(contractStoreConfig, { dataDir: null });
  await store.start();
  return { store, cleanup: () => store.stop() };
});
