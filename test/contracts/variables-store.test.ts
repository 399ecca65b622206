/**
 * Runs the VariablesStore contract against every store configuration (store-fixtures.ts), plus the
 * Redis key layout of §8 data.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { newApiKey } from '../../src/store/passwords.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { commit as describeCommit } from '../../src/variables/history.js';
import { makeOverride } from '../../src/variables/overrides.js';
import type { Op } from '../../src/variables/strategies.js';
import { ALL } from '../../src/variables/target.js';
import { sharedRedis } from '../helpers/processes.js';
import { contractStoreConfig } from './store.contract.js';
import { STORE_CONFIGURATIONS } from './store-fixtures.js';
import { variablesStoreContract } from './variables-store.contract.js';

for (const c of STORE_CONFIGURATIONS) variablesStoreContract(c.name, c.start);

describe('RedisStore §8 key layout', () => {
  it('puts every §8 key of an API key in the slot of `<apiKey>:vs` and leaves `<apiKey>:vs` to setVars', async () => {
    const redis = await sharedRedis();
    const prefix = `observerio-test-${randomBytes(4).toString('hex')}:`;
    const store = new RedisStore(contractStoreConfig, { url: redis.url, keyPrefix: prefix });
    await store.start();
    const client = redis.client();
    try {
      const apiKey = newApiKey();
      const now = Date.now();
      await store.touchDevice(apiKey, { deviceId: 'dev{x}:1', address: null, generated: false }, now, 1000);
      await store.setLabels(apiKey, 'dev{x}:1', { platform: 'ios' });
      await store.setReported(apiKey, 'dev{x}:1', [{ name: 'a', type: 'string', value: '1' }]);
      await store.setLastSent(apiKey, 'dev{x}:1', [{ name: 'a', type: 'string', value: '2' }], true);
      const state = await store.readState(apiKey);
      const ops: Op[] = [{ kind: 'override.set', override: makeOverride({ name: 'a', type: 'string', value: '2' }, ALL, 'x', now) }];
      const { draft } = describeCommit(state, ops, { at: now, actor: 'x', action: 'override.set', target: null });
      const r = await store.commit(apiKey, ops, draft, { stateVersion: 0 }, { maxEntries: 10, maxAgeMs: 60_000 }, 'x');
      if (!r.ok) throw new Error('commit refused');
      await store.setDelivered(apiKey, r.entry.id, 1);
      // Less the store's layout marker (src/redis/migrate-keys.ts), which belongs to no API key.
      const keys = (await client.keys(`${prefix}*`)).filter((k) => k !== `${prefix}layout`).sort();
      expect(keys).to.deep.equal(
        // No strategy was written, so no strategies hash.
        ['delivered', 'devices', 'history', 'labels', 'overrides', 'presence', 'reported', 'seen', 'sent', 'state']
          .map((k) => (k === 'reported' || k === 'sent' ? `${prefix}${k}:{${apiKey}:vs}:dev{x}:1` : `${prefix}${k}:{${apiKey}:vs}`))
          .sort(),
      );
      // Redis hashes a key on the text between its first `{` and the next `}`: `<apiKey>:vs` for all of them.
      for (const k of keys) expect(/\{([^}]*)\}/.exec(k)?.[1]).to.equal(`${apiKey}:vs`);
      expect(await client.exists(`${apiKey}:vs`)).to.equal(0);
      expect(await client.type(`${prefix}history:{${apiKey}:vs}`)).to.equal('stream');
      expect(await client.get(`${prefix}state:{${apiKey}:vs}`)).to.equal('1');
      // Forgetting the device deletes its own keys too.
      expect(await store.forgetDevices(apiKey, now + 1)).to.equal(0); // still online
      await store.markOffline(apiKey, 'dev{x}:1', now);
      expect(await store.forgetDevices(apiKey, now + 1)).to.equal(1);
      const left = await client.keys(`${prefix}*dev{x}:1`);
      expect(left).to.deep.equal([]);
    } finally {
      client.disconnect();
      await store.stop();
    }
  });
});
