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
import { sharedRedis, sharedRedisCluster } from '../helpers/processes.js';
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

// RedisStore keeps each key's parsed state by version (issue 14): two stores on one Redis are two
// nodes, and neither may act on a state the other has moved on from.
for (const [name, url] of [
  ['Redis', async () => (await sharedRedis()).url],
  ['Redis Cluster', async () => (await sharedRedisCluster()).url],
] as const) {
  describe(`RedisStore state read by two nodes (${name})`, function () {
    this.timeout(20_000);
    const bounds = { maxEntries: 100, maxAgeMs: 60_000 };
    const setOp = (value: string, at: number): Op => ({ kind: 'override.set', override: makeOverride({ name: 'speed', type: 'string', value }, ALL, 'ana@example.com', at) });
    async function commitOn(store: RedisStore, apiKey: string, ops: Op[], stateVersion: number) {
      const state = await store.readState(apiKey);
      const { draft } = describeCommit(state, ops, { at: Date.now(), actor: 'ana@example.com', action: 'override.set', target: null });
      return store.commit(apiKey, ops, draft, { stateVersion }, bounds, 'ana@example.com');
    }

    it('each node reads what the other committed, refuses a stale commit, and its own commits read as a fresh node reads them', async () => {
      const prefix = `observerio-test-${randomBytes(4).toString('hex')}:`;
      const u = await url();
      const [a, b, fresh] = [0, 1, 2].map(() => new RedisStore(contractStoreConfig, { url: u, keyPrefix: prefix })) as [RedisStore, RedisStore, RedisStore];
      await Promise.all([a.start(), b.start()]);
      try {
        const apiKey = newApiKey();
        const t = Date.now();
        expect((await commitOn(a, apiKey, [setOp('1', t)], 0)).ok).to.equal(true);
        expect((await a.readState(apiKey)).overrides.map((o) => o.value)).to.deep.equal(['1']);
        // b moves the state on; a, holding version 1, must see version 2 on its next read.
        expect((await commitOn(b, apiKey, [setOp('2', t + 1)], 1)).ok).to.equal(true);
        // lastState is what a held, without asking: stale now, and a commit at it is refused.
        const held = await a.lastState(apiKey);
        expect(held.stateVersion).to.equal(1);
        expect(held.overrides.map((o) => o.value)).to.deep.equal(['1']);
        const atHeld = await a.commitMany(apiKey, [{ ops: [setOp('9', t + 1)], draft: describeCommit(held, [setOp('9', t + 1)], { at: t + 1, actor: 'x', action: 'override.set', target: null }).draft, by: 'x' }], held.stateVersion, bounds);
        expect(atHeld).to.deep.equal({ ok: false, stateVersion: 2 });
        const seen = await a.readState(apiKey);
        expect(await a.lastState(apiKey)).to.deep.equal(seen);
        expect(seen.stateVersion).to.equal(2);
        expect(seen.overrides.map((o) => o.value)).to.deep.equal(['2']);
        // A commit computed at version 1 (what a held before) fails on a, whatever it held.
        const stale = await a.commit(apiKey, [setOp('3', t + 2)], describeCommit(seen, [setOp('3', t + 2)], { at: t + 2, actor: 'x', action: 'override.set', target: null }).draft, { stateVersion: 1 }, bounds, 'x');
        expect(stale).to.deep.equal({ ok: false, stateVersion: 2 });
        // a's own commit, taken into its cache without a read, reads exactly as a store that never saw it.
        const strat: Op = { kind: 'strategy.put', strategy: { name: 'fast', vars: [{ name: 'speed', type: 'string', value: '4' }] } };
        expect((await commitOn(a, apiKey, [setOp('4', t + 3), strat], 2)).ok).to.equal(true);
        expect((await commitOn(a, apiKey, [{ kind: 'override.clear', name: 'speed', target: ALL }, setOp('5', t + 4)], 3)).ok).to.equal(true);
        await fresh.start();
        expect(await a.readState(apiKey)).to.deep.equal(await fresh.readState(apiKey));
        expect(await b.readState(apiKey)).to.deep.equal(await fresh.readState(apiKey));
        expect((await fresh.readState(apiKey)).stateVersion).to.equal(4);
        // What a store hands out cannot be changed by a caller (it is shared by every later read).
        const o = (await a.readState(apiKey)).overrides[0];
        expect(Object.isFrozen(o)).to.equal(true);
      } finally {
        await Promise.all([a.stop(), b.stop(), fresh.stop()]);
      }
    });

    it('a node’s state after its own batches, taken into its cache without a read, is the state the other node reads, op for op', async () => {
      const prefix = `observerio-test-${randomBytes(4).toString('hex')}:`;
      const u = await url();
      const [a, b] = [0, 1].map(() => new RedisStore(contractStoreConfig, { url: u, keyPrefix: prefix })) as [RedisStore, RedisStore];
      await Promise.all([a.start(), b.start()]);
      try {
        const apiKey = newApiKey();
        let seed = 5;
        const rnd = (n: number) => {
          seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
          return (seed >>> 8) % n;
        };
        const targets = [ALL, { devices: ['d1', 'd2'] }, { labels: { os: 'ios' } }];
        const t = Date.now();
        const randomOp = (i: number): Op => {
          const name = `v${rnd(30)}`;
          const target = targets[rnd(targets.length)] ?? ALL;
          return rnd(4) === 0 ? { kind: 'override.clear', name, target } : { kind: 'override.set', override: makeOverride({ name, type: 'string', value: String(i) }, target, 'x', t + i) };
        };
        let version = 0;
        for (let round = 0; round < 25; round++) {
          // A batch as VarChanges makes one: each commit computed from the state the ones before it leave.
          const before = await a.readState(apiKey);
          let state = before;
          const commits = [];
          for (let c = 0; c < 1 + rnd(6); c++) {
            const ops = Array.from({ length: 1 + rnd(rnd(5) === 0 ? 20 : 3) }, (_, i) => randomOp(round * 1000 + c * 100 + i));
            const next = describeCommit(state, ops, { at: t + round, actor: 'x', action: 'override.set', target: null });
            commits.push({ ops, draft: next.draft, by: 'x' });
            state = { ...state, overrides: next.state.overrides };
          }
          // A read sent while the commit is on its way (the client actor reading overrides as a batch
          // commits) gives one whole state, the one before or the one after, never a mix.
          const [r, during] = await Promise.all([a.commitMany(apiKey, commits, version, bounds), a.readState(apiKey)]);
          if (!r.ok) throw new Error(`round ${round}: commitMany refused`);
          const mine = await a.readState(apiKey);
          expect(during.stateVersion, `round ${round}`).to.be.oneOf([version, r.stateVersion]);
          expect(during.overrides, `round ${round}`).to.deep.equal(during.stateVersion === version ? before.overrides : mine.overrides);
          version = r.stateVersion;
          expect(mine, `round ${round}`).to.deep.equal(await b.readState(apiKey));
          expect(mine.overrides, `round ${round}`).to.deep.equal(state.overrides);
        }
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    });
  });
}

// RedisStore keeps a device's long reported list by its JSON text, the one it wrote as well as the
// ones it read (issue 14: a streaming device had its list parsed once per report): two stores on one
// Redis are two nodes writing one device's list in turn, and each must read the other's.
describe('RedisStore reported lists written by two nodes', function () {
  this.timeout(20_000);
  it('reads what the other node wrote, never the list it wrote itself last, and hands out lists nobody can change', async () => {
    const prefix = `observerio-test-${randomBytes(4).toString('hex')}:`;
    const u = (await sharedRedis()).url;
    const [a, b] = [0, 1].map(() => new RedisStore(contractStoreConfig, { url: u, keyPrefix: prefix })) as [RedisStore, RedisStore];
    await Promise.all([a.start(), b.start()]);
    try {
      const apiKey = newApiKey();
      // Long enough to be kept (the cache takes lists of 2,048+ characters of JSON).
      const list = (tag: string) => Array.from({ length: 100 }, (_, i) => ({ name: `var${i}`, type: 'string', value: `${tag}-${i}` }));
      await a.setReported(apiKey, 'd1', list('a1'));
      expect(await a.getReported(apiKey, 'd1')).to.deep.equal(list('a1'));
      await b.setReported(apiKey, 'd1', list('b1'));
      expect(await a.getReported(apiKey, 'd1')).to.deep.equal(list('b1'));
      await a.setReported(apiKey, 'd1', list('a2'));
      expect(await b.getReported(apiKey, 'd1')).to.deep.equal(list('a2'));
      expect(await a.getReported(apiKey, 'd1')).to.deep.equal(list('a2'));
      // A caller's copy is its own array of frozen values: changing the array changes no later read.
      const got = await a.getReported(apiKey, 'd1');
      got.pop();
      expect(Object.isFrozen(got[0])).to.equal(true);
      expect(await a.getReported(apiKey, 'd1')).to.deep.equal(list('a2'));
      // What the caller passed in stays the caller's (not frozen by the store).
      const mine = list('a3');
      await a.setReported(apiKey, 'd1', mine);
      expect(Object.isFrozen(mine[0])).to.equal(false);
      await a.setReported(apiKey, 'd1', []);
      expect(await b.getReported(apiKey, 'd1')).to.deep.equal([]);
      expect(await a.getReported(apiKey, 'd1')).to.deep.equal([]);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
