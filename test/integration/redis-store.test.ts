/**
 * What only the Redis store promises: the original daemon's `<apiKey>:vs` layout byte for byte, no
 * plaintext passwords at rest, several daemons sharing one Redis, and clear failures when Redis is away.
 */
import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { ObserverioError } from '../../src/errors.js';
import { LOGIN_MAX_KEPT_FAILURES_OVER, loginRule } from '../../src/store/login-limiter.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { newApiKey } from '../../src/store/passwords.js';
import { commit as describeCommit } from '../../src/variables/history.js';
import { makeOverride } from '../../src/variables/overrides.js';
import type { Op } from '../../src/variables/strategies.js';
import { ALL } from '../../src/variables/target.js';
import { contractStoreConfig } from '../contracts/store.contract.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import { sharedRedis, startRedisServer, type RedisServer } from '../helpers/processes.js';

describe('RedisStore (Redis only)', () => {
  let server: RedisServer;
  let raw: Redis;
  let prefix: string;
  const stores: RedisStore[] = [];

  async function newStore(url = server.url): Promise<RedisStore> {
    const s = new RedisStore(contractStoreConfig, { url, keyPrefix: prefix });
    stores.push(s);
    await s.start();
    return s;
  }

  before(async () => {
    server = await sharedRedis();
    raw = server.client();
  });
  after(() => raw.disconnect());
  beforeEach(() => {
    prefix = `observerio-test-${randomBytes(4).toString('hex')}:`;
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.stop()));
  });

  describe('<apiKey>:vs', () => {
    it('has exactly the original fields in first-seen order', async () => {
      const store = await newStore();
      const k = newApiKey();
      await store.setVars(k, [{ name: 'testing1', type: 'integer', value: '1' }]);
      await store.setVars(k, [{ name: 'testing2', type: 'string', value: 'two' }]);
      await store.setVars(k, [{ name: 'testing1', type: 'integer', value: '11' }]);
      expect(await raw.hkeys(`${k}:vs`)).to.deep.equal(['testing1:type', 'testing1:value', 'testing2:type', 'testing2:value']);
      expect(await raw.hgetall(`${k}:vs`)).to.deep.equal({ 'testing1:type': 'integer', 'testing1:value': '11', 'testing2:type': 'string', 'testing2:value': 'two' });
    });

    it('is written without the key prefix, which only the observerio keys carry', async () => {
      const store = await newStore();
      const u = await store.createUser(`prefix-${prefix}@example.com`, 'pw');
      await store.setVars(u.apiKey, [{ name: 'a', type: 'string', value: '1' }]);
      await store.outboxPush(u.apiKey, [{ name: 'a', type: 'string', value: '2' }]);
      expect(await raw.exists(`${u.apiKey}:vs`)).to.equal(1);
      const prefixed = await raw.keys(`${prefix}*`);
      expect(prefixed.sort()).to.deep.equal(
        [`user:prefix-${prefix}@example.com`, `apikey:${u.apiKey}`, `varorder:{${u.apiKey}:vs}`, `outbox:{${u.apiKey}:vs}`, `outbox-order:{${u.apiKey}:vs}`, 'layout'].map((s) => prefix + s).sort(),
      );
    });

    it('reads variables the original daemon wrote (no order index) first, then newer ones', async () => {
      const store = await newStore();
      const k = newApiKey();
      await raw.hset(`${k}:vs`, 'old2:type', 'integer', 'old2:value', '2', 'old1:type', 'string', 'old1:value', 'x');
      await store.setVars(k, [{ name: 'new', type: 'boolean', value: 'true' }, { name: 'old1', type: 'string', value: 'y' }]);
      expect(await store.getVars(k)).to.deep.equal([
        { name: 'old2', type: 'integer', value: '2' },
        { name: 'old1', type: 'string', value: 'y' },
        { name: 'new', type: 'boolean', value: 'true' },
      ]);
    });

    it('keeps first-seen order where the hash itself no longer does', async () => {
      const store = await newStore();
      const k = newApiKey();
      const names = Array.from({ length: 100 }, (_, i) => `v${(i * 37) % 100}`);
      // One value over 64 bytes turns the hash from a listpack (insertion order) into a hashtable.
      for (const n of names) await store.setVars(k, [{ name: n, type: 'string', value: n === 'v50' ? 'x'.repeat(100) : n }]);
      const hashOrder = (await raw.hkeys(`${k}:vs`)).filter((f) => f.endsWith(':type')).map((f) => f.slice(0, -5));
      expect(await raw.object('ENCODING', `${k}:vs`)).to.equal('hashtable');
      // Guards the test itself: Redis has reordered the fields, which is why the order index exists.
      expect(hashOrder).to.not.deep.equal(names);
      expect((await store.getVars(k)).map((v) => v.name)).to.deep.equal(names);
    });
  });

  describe('users', () => {
    it('stores the password only as a scrypt hash', async () => {
      const store = await newStore();
      const password = `plain-${randomBytes(6).toString('hex')}`;
      const email = `Hash-${prefix}@Example.com`;
      const u = await store.createUser(email, password);
      const rec = await raw.hgetall(`${prefix}user:${email.toLowerCase()}`);
      expect(Object.keys(rec).sort()).to.deep.equal(['apiKey', 'createdAt', 'email', 'passwordHash']);
      expect(rec.email).to.equal(email);
      expect(rec.apiKey).to.equal(u.apiKey);
      expect(rec.passwordHash).to.match(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
      for (const key of await raw.keys(`${prefix}*`)) {
        const type = await raw.type(key);
        const values = type === 'hash' ? [...(await raw.hkeys(key)), ...(await raw.hvals(key))] : type === 'string' ? [(await raw.get(key)) ?? ''] : [type];
        expect(values.join('\n'), key).to.not.include(password);
      }
      expect(await raw.get(`${prefix}apikey:${u.apiKey}`)).to.equal(email.toLowerCase());
    });

    it('lets one registration win when two daemons race for one email', async () => {
      const [a, b] = [await newStore(), await newStore()];
      const email = `race-${prefix}@example.com`;
      const results = await Promise.allSettled([a.createUser(email, '1'), b.createUser(email.toUpperCase(), '2'), a.createUser(email, '3'), b.createUser(email, '4')]);
      expect(results.filter((r) => r.status === 'fulfilled')).to.have.length(1);
      for (const r of results) if (r.status === 'rejected') expect((r.reason as ObserverioError).code).to.equal('email_taken');
      expect(await raw.keys(`${prefix}apikey:*`)).to.have.length(1);
    });
  });

  describe('several daemons on one Redis', () => {
    it('see each other’s users, sessions, variables and outbox', async () => {
      const a = await newStore();
      const b = await newStore();
      const u = await a.createUser(`shared-${prefix}@example.com`, 'pw');
      expect(await b.authenticate(u.email, 'pw')).to.deep.equal(u);
      expect(await b.verifyApiKey(u.apiKey)).to.equal(true);

      const s = await a.createSession(u, 60_000);
      expect(await b.getSession(s.token)).to.deep.equal(s);
      await b.deleteSession(s.token);
      expect(await a.getSession(s.token)).to.equal(null);

      await a.setVars(u.apiKey, [{ name: 'speed', type: 'integer', value: '1' }]);
      await b.setVars(u.apiKey, [{ name: 'hp', type: 'integer', value: '2' }]);
      expect(await a.getVars(u.apiKey)).to.deep.equal(await b.getVars(u.apiKey));
      expect((await a.getVars(u.apiKey)).map((v) => v.name)).to.deep.equal(['speed', 'hp']);

      await a.outboxPush(u.apiKey, [{ name: 'speed', type: 'integer', value: '5' }]);
      await b.outboxPush(u.apiKey, [{ name: 'hp', type: 'integer', value: '6' }]);
      expect(await b.outboxTake(u.apiKey)).to.deep.equal([
        { name: 'speed', type: 'integer', value: '5' },
        { name: 'hp', type: 'integer', value: '6' },
      ]);
      expect(await a.outboxLength(u.apiKey)).to.equal(0);
    });

    it('keeps data across a daemon restart', async () => {
      const a = await newStore();
      const u = await a.createUser(`restart-${prefix}@example.com`, 'pw');
      await a.outboxPush(u.apiKey, [{ name: 'x', type: 'string', value: 'waiting' }]);
      await a.stop();
      const b = await newStore();
      expect(await b.authenticate(u.email, 'pw')).to.deep.equal(u);
      expect(await b.outboxTake(u.apiKey)).to.deep.equal([{ name: 'x', type: 'string', value: 'waiting' }]);
    });

    const set = (name: string, value: string): Op => ({ kind: 'override.set', override: makeOverride({ name, type: 'string', value }, ALL, 'ana@example.com', Date.now()) });
    /** Key `k`'s commit of `ops` at `version`, sent before it returns (no await first): a read started after it leaves after it. */
    const committer =
      (k: string) =>
      (store: RedisStore, version: number, ops: Op[]) => {
        const { draft } = describeCommit({ overrides: [], strategies: [] }, ops, { at: Date.now(), actor: 'ana@example.com', action: 'override.set', target: null });
        return store.commitMany(k, [{ ops, draft, by: 'ana@example.com' }], version, { maxEntries: 1000, maxAgeMs: 3_600_000 });
      };

    it('answers a read sent while its own commit is on its way with the state that commit leaves, without Redis sending the records', async () => {
      const a = await newStore();
      const b = await newStore();
      const k = newApiKey();
      const commitAt = committer(k);
      // Enough overrides that sending them would show: 200 records.
      expect((await commitAt(a, 0, Array.from({ length: 200 }, (_, i) => set(`v${i}`, '0')))).ok).to.equal(true);
      await a.readState(k);
      const hvals = async () => Number(/^cmdstat_hvals:calls=(\d+)/m.exec((await raw.info('commandstats')) as string)?.[1] ?? 0);
      const before = await hvals();
      // The read leaves while the commit is on its way: Redis runs it after the commit.
      const committed = commitAt(a, 1, [set('v7', 'new')]);
      const read = a.readState(k);
      expect((await committed).ok).to.equal(true);
      const state = await read;
      expect(state.stateVersion).to.equal(2);
      expect(state.overrides.find((o) => o.name === 'v7')?.value).to.equal('new');
      expect(state.overrides).to.have.length(200);
      expect(await hvals()).to.equal(before);
      // Another node's commit still brings the records: its change is read, not assumed.
      expect((await commitAt(b, 2, [set('v8', 'other')])).ok).to.equal(true);
      const fresh = await a.readState(k);
      expect(fresh.stateVersion).to.equal(3);
      expect(fresh.overrides.find((o) => o.name === 'v8')?.value).to.equal('other');
      expect(await hvals()).to.be.greaterThan(before);
    });

    it('reads the records when its commit on its way is refused and another node moved the version to the one it would have left', async () => {
      const a = await newStore();
      const b = await newStore();
      const k = newApiKey();
      const commitAt = committer(k);
      expect((await commitAt(a, 0, [set('x', '1')])).ok).to.equal(true);
      await a.readState(k);
      // b moves the key to version 2 behind a's back: the version a's commit at 1 would leave.
      expect((await commitAt(b, 1, [set('y', 'b')])).ok).to.equal(true);
      const refused = commitAt(a, 1, [set('z', 'a')]);
      const read = a.readState(k);
      expect((await refused).ok).to.equal(false);
      const state = await read;
      expect(state.stateVersion).to.equal(2);
      expect(state.overrides.map((o) => [o.name, o.value])).to.deep.equal([
        ['x', '1'],
        ['y', 'b'],
      ]);
    });

    it('sets a PX expiry on sessions', async () => {
      const a = await newStore();
      const u = await a.createUser(`ttl-${prefix}@example.com`, 'pw');
      const s = await a.createSession(u, 30_000);
      const pttl = await raw.pttl(`${prefix}session:${s.token}`);
      expect(pttl).to.be.within(25_000, 30_000);
    });
  });

  describe('the change path', () => {
    /** Redis's calls of these commands so far, scripts' own calls included (INFO commandstats). */
    const calls = async (): Promise<Record<'xrange' | 'xlen' | 'hset' | 'hdel', number>> => {
      const text = (await raw.info('commandstats')) as string;
      const n = (name: string): number => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(text)?.[1] ?? 0);
      return { xrange: n('xrange'), xlen: n('xlen'), hset: n('hset'), hdel: n('hdel') };
    };
    const set = (name: string, value: string): Op => ({ kind: 'override.set', override: makeOverride({ name, type: 'string', value }, ALL, 'ana@example.com', Date.now()) });
    const commitAt = (store: RedisStore, k: string, version: number, values: string[], at: number, bounds = { maxEntries: 5000, maxAgeMs: 3_600_000 }) =>
      store.commitMany(
        k,
        values.map((value) => {
          const ops = [set('n', value)];
          return { ops, draft: describeCommit({ overrides: [], strategies: [] }, ops, { at, actor: 'ana@example.com', action: 'override.set', target: null }).draft, by: 'ana@example.com' };
        }),
        version,
        bounds,
      );

    it('commits with nothing to prune without asking the stream for old entries or its length, and still prunes by age and by count, the counts of what it drops in one HDEL', async () => {
      const store = await newStore();
      const k = newApiKey();
      const t = Date.now();
      expect((await commitAt(store, k, 0, ['0'], t)).ok).to.equal(true);
      const c0 = await calls();
      const r = await commitAt(store, k, 1, ['1', '2'], t + 10);
      const c1 = await calls();
      expect(r.ok).to.equal(true);
      expect([c1.xrange - c0.xrange, c1.xlen - c0.xlen]).to.deep.equal([0, 0]);
      // By age: the first entry is older than the new one's cutoff; by count: one over maxEntries.
      const values = async () => (await store.listHistory(k, { limit: 10 })).map((e) => e.changes[0]?.after?.value);
      expect((await commitAt(store, k, 3, ['3'], t + 2000, { maxEntries: 1000, maxAgeMs: 1000 })).ok).to.equal(true);
      expect(await values()).to.deep.equal(['3']);
      expect((await commitAt(store, k, 4, ['4', '5'], t + 2001, { maxEntries: 2, maxAgeMs: 1000 })).ok).to.equal(true);
      expect(await values()).to.deep.equal(['5', '4']);
      // Five dropped at once, their delivered counts with them: one HDEL.
      for (const e of await store.listHistory(k, { limit: 10 })) await store.setDelivered(k, e.id, 1);
      const c2 = await calls();
      expect((await commitAt(store, k, 6, ['6', '7', '8', '9', '10'], t + 2002, { maxEntries: 2, maxAgeMs: 1000 })).ok).to.equal(true);
      const c3 = await calls();
      expect(c3.hdel - c2.hdel).to.equal(1);
      expect(await values()).to.deep.equal(['10', '9']);
      expect(await raw.hlen(`${prefix}delivered:{${k}:vs}`)).to.equal(0);
    });

    it("writes a batch's overrides in one HSET and its cleared ones in one HDEL, leaving the state as one by one", async () => {
      const store = await newStore();
      const k = newApiKey();
      const t = Date.now();
      const many = (version: number, ops: Op[][]) =>
        store.commitMany(
          k,
          ops.map((o) => ({ ops: o, draft: describeCommit({ overrides: [], strategies: [] }, o, { at: t, actor: 'ana@example.com', action: 'override.set', target: null }).draft, by: 'ana@example.com' })),
          version,
          { maxEntries: 1000, maxAgeMs: 3_600_000 },
        );
      expect((await many(0, [[set('a', '1')], [set('b', '1')], [set('c', '1')]])).ok).to.equal(true);
      const c0 = await calls();
      // b set twice and a cleared within the batch: one write each, the later one's.
      const clearA: Op = { kind: 'override.clear', name: 'a', target: ALL };
      expect((await many(3, [[set('b', '2')], [clearA], [set('d', '1')], [set('b', '3')]])).ok).to.equal(true);
      const c1 = await calls();
      expect([c1.hset - c0.hset, c1.hdel - c0.hdel]).to.deep.equal([1, 1]);
      const fresh = await (await newStore()).readState(k);
      expect(fresh.overrides.map((o) => [o.name, o.value])).to.deep.equal([
        ['b', '3'],
        ['c', '1'],
        ['d', '1'],
      ]);
    });

    it("lists the devices a change's pending count is taken against in one command, no MULTI, 2,500 of them too", async () => {
      const store = await newStore();
      const k = newApiKey();
      const now = Date.now();
      const ids = Array.from({ length: 2500 }, (_, i) => `dev-${i}`);
      await store.touchDevices(k, ids.map((deviceId) => ({ deviceId, address: null, generated: false })), now - 10_000, 60_000);
      // One seen before the remembered window but online: found through its presence.
      await store.touchDevice(k, { deviceId: 'early', address: null, generated: false }, now - 120_000, 3_600_000);
      await store.setLabels(k, 'dev-1700', { platform: 'ios' });
      const text = async () => (await raw.info('commandstats')) as string;
      const n = (t: string, name: string): number => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(t)?.[1] ?? 0);
      const t0 = await text();
      const views = await store.listDeviceViews(k, 60_000, now);
      const t1 = await text();
      expect([n(t1, 'evalsha') - n(t0, 'evalsha'), n(t1, 'multi') - n(t0, 'multi'), n(t1, 'hmget') - n(t0, 'hmget')]).to.deep.equal([1, 0, 3]);
      expect(views).to.have.length(2501);
      expect(views.find((v) => v.deviceId === 'dev-1700')?.labels).to.deep.equal({ platform: 'ios' });
      expect(views.find((v) => v.deviceId === 'early')?.labels).to.deep.equal({});
      expect(views.map((v) => v.deviceId).sort()).to.deep.equal((await store.listDevices(k, 60_000, now)).map((d) => d.deviceId).sort());
    });

    it("writes a batch's delivered counts with one XRANGE and one HSET, and still only on entries that are there", async () => {
      const store = await newStore();
      const k = newApiKey();
      const t = Date.now();
      const batch = await commitAt(store, k, 0, ['a', 'b', 'c'], t);
      if (!batch.ok) throw new Error('refused');
      const ids = batch.entries.map((e) => e.id);
      const c0 = await calls();
      await store.setDeliveredMany(k, ids.map((id, i) => ({ id, delivered: i + 1 })));
      const c1 = await calls();
      expect([c1.xrange - c0.xrange, c1.hset - c0.hset]).to.deep.equal([1, 1]);
      expect((await store.listHistory(k, { limit: 3 })).map((e) => e.delivered)).to.deep.equal([3, 2, 1]);
      // A batch's first and last of 300 (those between reached nobody): still one XRANGE; of 600, two.
      for (const [size, xranges] of [
        [300, 1],
        [600, 2],
      ] as const) {
        const state = await store.readState(k);
        const big = await commitAt(store, k, state.stateVersion, Array.from({ length: size }, (_, i) => String(i)), t);
        if (!big.ok) throw new Error('refused');
        const ends = [big.entries[0]?.id as string, big.entries.at(-1)?.id as string];
        const b0 = await calls();
        await store.setDeliveredMany(k, ends.map((id) => ({ id, delivered: 4 })));
        const b1 = await calls();
        expect([b1.xrange - b0.xrange, b1.hset - b0.hset], `${size}`).to.deep.equal([xranges, 1]);
        for (const id of ends) expect((await store.getHistoryEntry(k, id))?.delivered).to.equal(4);
      }
      // Ids far apart (many entries between them), one that never was between them, one pruned away:
      // the ones there are set, the others leave nothing in the delivered hash.
      const between = await commitAt(store, k, (await store.readState(k)).stateVersion, Array.from({ length: 100 }, (_, i) => String(i)), t + 1);
      const last = await commitAt(store, k, (await store.readState(k)).stateVersion, ['z'], t + 2);
      if (!between.ok || !last.ok) throw new Error('refused');
      const lastId = last.entries[0]?.id as string;
      const [ms, seq] = (ids[0] as string).split('-').map(Number) as [number, number];
      const never = `${ms}-${seq + 50_000}`;
      await store.setDeliveredMany(k, [
        { id: ids[0] as string, delivered: 9 },
        { id: never, delivered: 9 },
        { id: '1-0', delivered: 9 },
        { id: lastId, delivered: 8 },
      ]);
      expect((await store.getHistoryEntry(k, ids[0] as string))?.delivered).to.equal(9);
      expect((await store.getHistoryEntry(k, lastId))?.delivered).to.equal(8);
      const hash = `${prefix}delivered:{${k}:vs}`;
      expect(await raw.hexists(hash, never)).to.equal(0);
      expect(await raw.hexists(hash, '1-0')).to.equal(0);
    });
  });

  describe('a connect storm', () => {
    /** Redis's calls of these commands so far (INFO commandstats). */
    const calls = async (): Promise<{ del: number; multi: number; hset: number; evalsha: number; eval: number }> => {
      const text = (await raw.info('commandstats')) as string;
      const n = (name: string): number => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(text)?.[1] ?? 0);
      return { del: n('del'), multi: n('multi'), hset: n('hset'), evalsha: n('evalsha'), eval: n('eval') };
    };

    it('records a batch of devices, their last seen and presence in one command, no MULTI', async () => {
      const store = await newStore();
      const k = newApiKey();
      const now = Date.now();
      const devices = Array.from({ length: 50 }, (_, i) => ({ deviceId: `dev-${i}`, address: `10.0.0.${i}:4000`, generated: i === 7 }));
      await store.touchDevices(k, devices.slice(0, 1), now, 60_000);
      const c0 = await calls();
      await store.touchDevices(k, devices, now + 1, 60_000);
      const c1 = await calls();
      expect([c1.evalsha + c1.eval - c0.evalsha - c0.eval, c1.multi - c0.multi]).to.deep.equal([1, 0]);
      const listed = await store.listDevices(k, 60_000, now + 2);
      expect(listed).to.have.length(50);
      const d7 = listed.find((d) => d.deviceId === 'dev-7');
      expect([d7?.online, d7?.lastSeen, d7?.lastAddress, d7?.generated]).to.deep.equal([true, now + 1, '10.0.0.7:4000', true]);
    });

    it('clears the last-sent of a batch of devices with nothing in effect in one DEL, no MULTI, and fills the others in one MULTI', async () => {
      const store = await newStore();
      const k = newApiKey();
      const ids = Array.from({ length: 50 }, (_, i) => `dev-${i}`);
      for (const id of ids.slice(0, 3)) await store.setLastSent(k, id, [{ name: 'a', type: 'string', value: 'old' }], true);
      const c0 = await calls();
      await store.replaceLastSent(k, ids.map((deviceId) => ({ deviceId, vars: [] })));
      const c1 = await calls();
      expect([c1.del - c0.del, c1.multi - c0.multi]).to.deep.equal([1, 0]);
      for (const id of ids.slice(0, 3)) expect(await store.getLastSent(k, id)).to.deep.equal(new Map());
      // Some with something in effect: still one DEL, in one MULTI with their HSETs; a device twice, the later.
      await store.replaceLastSent(k, [
        ...ids.map((deviceId) => ({ deviceId, vars: [] })),
        { deviceId: 'dev-1', vars: [{ name: 'b', type: 'string', value: 'new' }] },
      ]);
      const c2 = await calls();
      expect([c2.del - c1.del, c2.multi - c1.multi, c2.hset - c1.hset]).to.deep.equal([1, 1, 1]);
      expect(await store.getLastSent(k, 'dev-1')).to.deep.equal(new Map([['b', { name: 'b', type: 'string', value: 'new' }]]));
      expect(await store.getLastSent(k, 'dev-0')).to.deep.equal(new Map());
    });

    it('sends a heartbeat of 2,500 devices as one script carrying each id once, no MULTI, and refreshes them all, also after Redis forgot its scripts', async () => {
      const store = await newStore();
      const k = newApiKey();
      const now = Date.now();
      const ids = Array.from({ length: 2500 }, (_, i) => `dev-${i}`);
      await store.touchDevices(k, ids.slice(0, 1).map((deviceId) => ({ deviceId, address: null, generated: false })), now, 60_000);
      await store.heartbeat(k, ids.slice(0, 1), now, 60_000);
      const monitor = await raw.duplicate().monitor();
      const seen: string[][] = [];
      monitor.on('monitor', (_time: string, args: string[]) => {
        if (args.some((a) => a.includes(k))) seen.push(args);
      });
      try {
        const c0 = await calls();
        await store.heartbeat(k, ids, now + 5, 60_000);
        const c1 = await calls();
        expect([c1.evalsha + c1.eval - c0.evalsha - c0.eval, c1.multi - c0.multi]).to.deep.equal([1, 0]);
        await eventually(() => expect(seen).to.have.length.at.least(1));
        // evalsha sha 2 seen presence at until id…: each device once.
        const sent = seen[0] as string[];
        expect(sent.length).to.equal(7 + ids.length);
        expect(sent.slice(7)).to.deep.equal(ids);
      } finally {
        monitor.disconnect();
      }
      const listed = await store.listDevices(k, 60_000, now + 10);
      expect(listed).to.have.length(2500);
      expect(listed.every((d) => d.online && d.lastSeen === now + 5)).to.equal(true);
      // Presence runs until at + ttl: past it, none is online.
      expect((await store.listDevices(k, 3_600_000, now + 5 + 60_001)).some((d) => d.online)).to.equal(false);
      // A Redis that lost its scripts (a restart, SCRIPT FLUSH) gets the script again; never-backwards holds.
      await raw.script('FLUSH');
      await store.heartbeat(k, ids, now + 1, 60_000);
      await store.heartbeat(k, ids.slice(0, 2), now + 20, 60_000);
      const again = await store.listDevices(k, 60_000, now + 21);
      expect(again.find((d) => d.deviceId === 'dev-0')?.lastSeen).to.equal(now + 20);
      expect(again.find((d) => d.deviceId === 'dev-2499')?.lastSeen).to.equal(now + 5);
    });
  });

  describe('failed-login records', () => {
    const rule = loginRule({ maxFailures: 2, windowMs: 60_000, baseDelayMs: 1000, maxDelayMs: 120_000, attemptTimeoutMs: 30_000 });
    const loginKey = (key: string) => `${prefix}login:${createHash('sha256').update(key).digest('hex')}`;

    it('live in one fixed-size key per email, no email in its name, expiring once nothing in it counts', async () => {
      const store = await newStore();
      const email = `${'x'.repeat(5000)}@example.com`;
      const long = loginRule({ ...rule, baseDelayMs: 90_000 });
      expect(await store.loginBegin(email, long)).to.equal(null);
      await store.loginEnd(email, 'fail', long);
      const keys = await raw.keys(`${prefix}login:*`);
      expect(keys).to.deep.equal([loginKey(email)]);
      expect(keys[0]).to.have.length(prefix.length + 'login:'.length + 64);
      expect(await raw.pttl(loginKey(email))).to.be.within(59_000, 60_000);
      // A lockout longer than the window keeps the record as long as the lockout lasts.
      expect(await store.loginBegin(email, long)).to.equal(null);
      await store.loginEnd(email, 'fail', long);
      expect(await store.loginBegin(email, long)).to.be.within(89_000, 90_000);
      expect(await raw.pttl(loginKey(email))).to.be.within(89_000, 90_000);
      await store.loginEnd(email, 'succeed', long);
      expect(await raw.exists(loginKey(email))).to.equal(0);
    });

    it('an attempt that went ahead and was abandoned leaves nothing behind', async () => {
      const store = await newStore();
      expect(await store.loginBegin('gone@example.com', rule)).to.equal(null);
      expect(await raw.pttl(loginKey('gone@example.com'))).to.be.within(29_000, 60_000);
      await store.loginEnd('gone@example.com', 'abandon', rule);
      expect(await raw.exists(loginKey('gone@example.com'))).to.equal(0);
    });

    it('is shared by two stores (two daemons) on one Redis', async () => {
      const [a, b] = [await newStore(), await newStore()];
      for (const s of [a, b]) {
        expect(await s.loginBegin('shared@example.com', rule)).to.equal(null);
        await s.loginEnd('shared@example.com', 'fail', rule);
      }
      expect(await a.loginBegin('shared@example.com', rule)).to.be.a('number');
      expect(await b.loginBegin('shared@example.com', rule)).to.be.a('number');
    });

    it('keeps failures past the limit bounded, however many there are', async () => {
      const store = await newStore();
      const r = loginRule({ maxFailures: 1, baseDelayMs: 1, maxDelayMs: 1, windowMs: 60_000 });
      for (let i = 0; i < 120; i++) await store.loginEnd('many@example.com', 'fail', r);
      const f = (await raw.hget(loginKey('many@example.com'), 'f')) ?? '';
      expect(f.split(' ')).to.have.length(1 + LOGIN_MAX_KEPT_FAILURES_OVER);
    });
  });

  describe('connection', () => {
    it('start() fails clearly, without the password, when Redis is unreachable', async () => {
      const port = await freePort();
      const store = new RedisStore(contractStoreConfig, { url: `redis://:hunter2@127.0.0.1:${port}` });
      stores.push(store);
      let err: Error | undefined;
      try {
        await store.start();
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message).to.match(/cannot connect to Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+.*ECONNREFUSED/);
      expect(err?.message).to.not.include('hunter2');
      const h = await store.health();
      expect(h).to.include({ ok: false, kind: 'redis' });
    });

    it('reports unhealthy, logs and keeps the process up when Redis goes away', async function () {
      this.timeout(30_000);
      const own = await startRedisServer();
      const lines: string[] = [];
      const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
      const store = new RedisStore(contractStoreConfig, { url: own.url, logger });
      stores.push(store);
      try {
        await store.start();
        expect((await store.health()).ok).to.equal(true);
        await own.stop();
        await eventually(async () => expect((await store.health()).ok).to.equal(false));
        await eventually(() => expect(lines.join('')).to.include('redis connection error'));
        const k = newApiKey();
        let failed = false;
        await store.getVars(k).catch(() => (failed = true));
        expect(failed).to.equal(true);
      } finally {
        await own.stop();
      }
    });
  });
});
