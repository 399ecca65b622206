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
        ['chain', 'delivered', 'devices', 'history', 'labels', 'overrides', 'presence', 'reported', 'seen', 'sent', 'state']
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
    /** `n` stores on one fresh key prefix of this Redis, as `n` nodes sharing it (not started). */
    async function nodes(n: number): Promise<RedisStore[]> {
      const prefix = `observerio-test-${randomBytes(4).toString('hex')}:`;
      const u = await url();
      return Array.from({ length: n }, () => new RedisStore(contractStoreConfig, { url: u, keyPrefix: prefix }));
    }

    it('each node reads what the other committed, refuses a stale commit, and its own commits read as a fresh node reads them', async () => {
      const [a, b, fresh] = (await nodes(3)) as [RedisStore, RedisStore, RedisStore];
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

    it('a commit chained on a refused one is refused even when the other node moved the version to the one it expects', async () => {
      const [a, b] = (await nodes(2)) as [RedisStore, RedisStore];
      await Promise.all([a.start(), b.start()]);
      try {
        const apiKey = newApiKey();
        const t = Date.now();
        expect((await commitOn(a, apiKey, [setOp('1', t)], 0)).ok).to.equal(true);
        // b moves the key to version 2 behind a's back; a still holds version 1.
        expect((await commitOn(b, apiKey, [setOp('2', t + 1)], 1)).ok).to.equal(true);
        const held = await a.lastState(apiKey);
        expect(held.stateVersion).to.equal(1);
        const one = (op: Op, from: typeof held) => [{ ops: [op], draft: describeCommit(from, [op], { at: t + 2, actor: 'x', action: 'override.set', target: null }).draft, by: 'x' }];
        // a's commit from the state it held, and one computed from what that would leave, sent at
        // once: the second's version is the key's (b's commit moved it there), the state is not.
        const first = a.commitMany(apiKey, one(setOp('3', t + 2), held), 1, bounds);
        const second = a.commitMany(apiKey, one({ kind: 'override.set', override: makeOverride({ name: 'other', type: 'string', value: 'x' }, ALL, 'x', t + 2) }, held), 2, bounds, { chained: true });
        expect(await first).to.deep.equal({ ok: false, stateVersion: 2 });
        expect(await second).to.deep.equal({ ok: false, stateVersion: 2 });
        const seen = await b.readState(apiKey);
        expect(seen.stateVersion).to.equal(2);
        expect(seen.overrides.map((o) => [o.name, o.value])).to.deep.equal([['speed', '2']]);
        expect(await b.listHistory(apiKey, { limit: 10 })).to.have.length(2);
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    });

    it('a node’s state after its own batches, taken into its cache without a read, is the state the other node reads, op for op', async () => {
      const [a, b] = (await nodes(2)) as [RedisStore, RedisStore];
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

describe('RedisStore reported lists: a report costs what it changes', function () {
  this.timeout(20_000);
  const prefix = `observerio-test-${randomBytes(4).toString('hex')}:`;
  let redis: Awaited<ReturnType<typeof sharedRedis>>;
  let client: ReturnType<Awaited<ReturnType<typeof sharedRedis>>['client']>;
  let a: RedisStore;
  let b: RedisStore;
  beforeEach(async () => {
    redis = await sharedRedis();
    client = redis.client();
    [a, b] = [0, 1].map(() => new RedisStore(contractStoreConfig, { url: redis.url, keyPrefix: prefix })) as [RedisStore, RedisStore];
    await Promise.all([a.start(), b.start()]);
  });
  afterEach(async () => {
    await Promise.all([a.stop(), b.stop()]);
    client.disconnect();
  });
  const list = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ name: `var${i}`, type: 'string', value: `${tag}-${i}` }));
  const reportedKey = (apiKey: string, deviceId: string) => `${prefix}reported:{${apiKey}:vs}:${deviceId}`;
  /** Bytes Redis took in and sent out while `fn` ran, less what the two INFO calls around it cost. */
  const traffic = async (fn: () => Promise<unknown>): Promise<{ input: number; output: number }> => {
    const stats = async () => {
      const text = await client.info('stats');
      const field = (f: string) => Number(new RegExp(`${f}:(\\d+)`).exec(text)?.[1]);
      return { input: field('total_net_input_bytes'), output: field('total_net_output_bytes') };
    };
    const c0 = await stats();
    const c1 = await stats();
    const x0 = await stats();
    await fn();
    const x1 = await stats();
    return { input: x1.input - x0.input - (c1.input - c0.input), output: x1.output - x0.output - (c1.output - c0.output) };
  };

  it('sends Redis only the values that changed and the names that came, and reads nothing more back while its copy is current', async () => {
    const apiKey = newApiKey();
    const whole = list(1000, 'a');
    const first = await traffic(() => a.setReported(apiKey, 'd1', whole));
    expect(first.input).to.be.above(30_000);
    // A report turn's fold: one value changed, one name appended.
    const next = [...whole.slice(0, 500), { name: 'var500', type: 'string', value: 'changed' }, ...whole.slice(501), { name: 'fresh', type: 'integer', value: '7' }];
    const write = await traffic(() => a.setReported(apiKey, 'd1', next));
    expect(write.input).to.be.below(1_000);
    let got: unknown;
    const read = await traffic(async () => (got = await a.getReported(apiKey, 'd1')));
    expect(got).to.deep.equal(next);
    expect(read.output).to.be.below(500);
    // Another node reads it all, in first-seen order.
    expect(await b.getReported(apiKey, 'd1')).to.deep.equal(next);
    expect(await client.type(reportedKey(apiKey, 'd1'))).to.equal('hash');
  });

  it('writes the list whole when another node wrote it in between, and when it changes shape', async () => {
    const apiKey = newApiKey();
    await a.setReported(apiKey, 'd1', list(100, 'a'));
    await b.setReported(apiKey, 'd1', list(50, 'b'));
    // `a` still holds its own copy: its write against that version is refused by Redis and done whole.
    const mine = [...list(100, 'a').slice(0, 99), { name: 'var99', type: 'string', value: 'a-again' }];
    await a.setReported(apiKey, 'd1', mine);
    expect(await b.getReported(apiKey, 'd1')).to.deep.equal(mine);
    // Names removed and reordered: written whole, in the new order.
    const other = [{ name: 'var5', type: 'string', value: 'x' }, { name: 'var1', type: 'string', value: 'y' }];
    await b.setReported(apiKey, 'd1', other);
    expect(await a.getReported(apiKey, 'd1')).to.deep.equal(other);
    expect(await b.getReported(apiKey, 'd1')).to.deep.equal(other);
    // A name twice: the later value, in the first place, as before.
    await a.setReported(apiKey, 'd1', [...other, { name: 'var5', type: 'string', value: 'z' }]);
    expect(await b.getReported(apiKey, 'd1')).to.deep.equal([{ name: 'var5', type: 'string', value: 'z' }, { name: 'var1', type: 'string', value: 'y' }]);
  });

  it('reads a list stored in the earlier layout (one JSON string), and its next write replaces it with the hash', async () => {
    const apiKey = newApiKey();
    const old = list(30, 'old');
    await client.set(reportedKey(apiKey, 'd1'), JSON.stringify(old));
    expect(await a.getReported(apiKey, 'd1')).to.deep.equal(old);
    expect((await a.getSentAndReported(apiKey, ['d1']))[0]?.reported).to.deep.equal(old);
    const next = [...old, { name: 'new', type: 'integer', value: '1' }];
    await a.setReported(apiKey, 'd1', next);
    expect(await client.type(reportedKey(apiKey, 'd1'))).to.equal('hash');
    expect(await b.getReported(apiKey, 'd1')).to.deep.equal(next);
    // The device forgotten: its hash goes with it.
    await a.touchDevice(apiKey, { deviceId: 'd1', address: null, generated: false }, 1000, 1);
    expect(await a.forgetDevices(apiKey, 2000)).to.equal(1);
    expect(await client.exists(reportedKey(apiKey, 'd1'))).to.equal(0);
  });

  it('reads a hash it cannot parse (edited by hand) as no values, and writes over it whole', async () => {
    const apiKey = newApiKey();
    const key = reportedKey(apiKey, 'd1');
    for (const fields of [['\u0000v', 'x1', 'speed', 'garbage'], ['speed', '0\u0000integer\u00001'], ['\u0000v', 'x2', 'a', '0\u0000t\u00001', 'b', '0\u0000t\u00002'], ['\u0000v', 'x3', 'a', '-1\u0000t\u00001']]) {
      await client.del(key);
      await client.hset(key, ...fields);
      expect(await a.getReported(apiKey, 'd1'), JSON.stringify(fields)).to.deep.equal([]);
    }
    const good = list(3, 'g');
    await a.setReported(apiKey, 'd1', good);
    expect(await b.getReported(apiKey, 'd1')).to.deep.equal(good);
  });
});
