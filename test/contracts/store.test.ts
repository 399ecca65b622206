/**
 * Runs the Store contract against every implementation: memory (with a data dir, so every operation
 * goes through the journal; once more fsyncing every write; and without a data dir), Redis, and a
 * Redis Cluster (three masters, where every multi-key script must stay within one slot).
 */
import { STORE_CONFIGURATIONS } from './store-fixtures.js';
import { storeContract } from './store.contract.js';

for (const c of STORE_CONFIGURATIONS) storeContract(c.name, c.start);
