/**
 * The per-tenant limits on a fake clock and a fake store: each limit refuses exactly past its number,
 * lets through what is allowed in the same call, counts every refusal, refills with time, and holds
 * its bounds under hostile input (a flood of new names, many keys, a store that fails).
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { LimitsConfig } from '../../../src/config.js';
import { LimitRefusals } from '../../../src/limits/limit-metrics.js';
import { TenantLimits, type LimitName, type VarsVerdict } from '../../../src/limits/tenant-limits.js';
import type { Var } from '../../../src/model.js';

const CFG: LimitsConfig = {
  maxVarsPerKey: 10,
  newVarsPerMinute: 6,
  newVarsBurst: 8,
  varsRefreshMs: 5000,
  maxConnectionsPerKey: 3,
  maxConnectionsPerAddress: 2,
  logsPerSecond: 100,
  logsBurst: 200,
  metricsMaxKeys: 2,
};

const K = 'LIMITSKEY001';
const K2 = 'LIMITSKEY002';
const v = (name: string, value = '1'): Var => ({ name, type: 'integer', value });
const names = (n: number, prefix = 'n'): Var[] => Array.from({ length: n }, (_, i) => v(`${prefix}${i}`));

class FakeStore {
  readonly stored = new Map<string, string[]>();
  reads = 0;
  failing = false;
  async varNames(apiKey: string): Promise<readonly string[]> {
    this.reads += 1;
    if (this.failing) throw new Error('store down');
    return [...(this.stored.get(apiKey) ?? [])];
  }
}

describe('limits/tenant-limits', () => {
  let clock: number;
  let store: FakeStore;
  let refusals: Array<[LimitName, string | null, number]>;
  let limits: TenantLimits;

  const make = (cfg: Partial<LimitsConfig> = {}): TenantLimits =>
    new TenantLimits({ ...CFG, ...cfg }, { varNames: (k) => store.varNames(k), onRefused: (l, k, n) => refusals.push([l, k, n]), now: () => clock });
  /** One i: line on a connection of the key (lines come from verified connections, which hold a slot). */
  const admit = async (key: string, vars: Var[]): Promise<VarsVerdict> => {
    if (!limits.keyInfo(key)?.connections) limits.acquireKey(key);
    return await limits.admitVars(key, vars);
  };
  const acceptedNames = (r: VarsVerdict): string[] => r.accepted.map((x) => x.name);

  beforeEach(() => {
    clock = 1_000_000;
    store = new FakeStore();
    refusals = [];
    limits = make();
  });

  describe('admitVars: variables per key', () => {
    it('accepts new names up to maxVarsPerKey, refuses the rest of the line, and counts them', async () => {
      limits = make({ newVarsBurst: 100 });
      const r = await admit(K, names(13));
      expect(acceptedNames(r)).to.deep.equal(names(10).map((x) => x.name));
      expect(r).to.include({ overCap: 3, overRate: 0, known: 10 });
      expect(r.refusedNames).to.deep.equal(['n10', 'n11', 'n12']);
      expect(refusals).to.deep.equal([['vars_per_key', K, 3]]);
    });

    it('keeps the known names of a refused line, in order, and never refuses an update', async () => {
      limits = make({ newVarsBurst: 100 });
      await admit(K, names(10));
      refusals = [];
      const line = [v('n3', 'x'), v('fresh1'), v('n0', 'y'), v('fresh2'), v('n9', 'z')];
      const r = await admit(K, line);
      expect(r.accepted).to.deep.equal([v('n3', 'x'), v('n0', 'y'), v('n9', 'z')]);
      expect(r.overCap).to.equal(2);
      // Updates only: the line's own array, nothing refused, even at the cap and with no budget left.
      const updates = names(10).map((x) => v(x.name, 'new'));
      const u = await admit(K, updates);
      expect(u.accepted).to.equal(updates);
      expect(u).to.include({ overCap: 0, overRate: 0 });
    });

    it("counts the store's names: a key that already has maxVarsPerKey gets no new one", async () => {
      store.stored.set(K, names(10, 's').map((x) => x.name));
      const r = await admit(K, [v('s1'), v('new')]);
      expect(acceptedNames(r)).to.deep.equal(['s1']);
      expect(r.overCap).to.equal(1);
    });

    it('refuses every occurrence of a refused name in one line', async () => {
      limits = make({ maxVarsPerKey: 1 });
      const r = await admit(K, [v('a'), v('b', '1'), v('a', '2'), v('b', '2')]);
      expect(r.accepted).to.deep.equal([v('a'), v('a', '2')]);
      expect(r.overCap).to.equal(2);
      expect(r.refusedNames).to.deep.equal(['b']);
    });

    it('is bounded by the cap under a flood of new names, and names at most 3 of them', async () => {
      limits = make({ maxVarsPerKey: 50, newVarsBurst: 50 });
      let accepted = 0;
      let refused = 0;
      for (let line = 0; line < 100; line++) {
        const r = await admit(K, names(100, `l${line}_`));
        accepted += r.accepted.length;
        refused += r.overCap + r.overRate;
        expect(r.refusedNames.length).to.be.at.most(3);
      }
      expect(accepted).to.equal(50);
      expect(refused).to.equal(10_000 - 50);
      expect(limits.keyInfo(K)?.knownVars).to.equal(50);
    });
  });

  describe('admitVars: new variables per minute', () => {
    it('allows newVarsBurst at once, then newVarsPerMinute, refilled by the clock', async () => {
      const first = await admit(K, names(9));
      expect(first.accepted).to.have.length(8);
      expect(first).to.include({ overRate: 1, overCap: 0 });
      expect(refusals).to.deep.equal([['new_vars_per_minute', K, 1]]);
      clock += 10_000; // 6/min: one new name per 10 s
      const second = await admit(K, [v('n8'), v('later')]);
      expect(acceptedNames(second)).to.deep.equal(['n8']);
      expect(second.overRate).to.equal(1);
      clock += 20_000;
      // Two tokens again, but one slot left under maxVarsPerKey (10): the cap refuses the rest.
      const third = await admit(K, [v('later'), v('later2'), v('later3')]);
      expect(acceptedNames(third)).to.deep.equal(['later']);
      expect(third).to.include({ overCap: 2, overRate: 0 });
    });

    it('reports both limits when a line meets both', async () => {
      limits = make({ maxVarsPerKey: 10, newVarsBurst: 10, newVarsPerMinute: 60 });
      await admit(K, names(9));
      // 1 token left, 1 slot left: the first new name takes both; the next hits the cap.
      const r = await admit(K, [v('x1'), v('x2')]);
      expect(r).to.include({ overCap: 1, overRate: 0 });
      limits = make({ maxVarsPerKey: 100, newVarsBurst: 2 });
      const q = await admit(K2, names(3));
      expect(q).to.include({ overCap: 0, overRate: 1 });
    });
  });

  describe('admitVars: the store', () => {
    it('reads the names once per key, then decides synchronously', async () => {
      limits.acquireKey(K);
      await admit(K, [v('a')]);
      expect(store.reads).to.equal(1);
      const r = limits.admitVars(K, [v('a'), v('b')]);
      expect(r).to.not.be.instanceOf(Promise);
      expect(store.reads).to.equal(1);
    });

    it('re-reads a stale copy before deciding a new name, and sees names written elsewhere', async () => {
      limits = make({ maxVarsPerKey: 3, newVarsBurst: 3 });
      limits.acquireKey(K);
      await admit(K, [v('a')]);
      // Another node (or the dashboard) adds b and c; this node does not know yet.
      store.stored.set(K, ['a', 'b', 'c']);
      clock += 5000;
      const r = await admit(K, [v('b'), v('d')]);
      expect(store.reads).to.equal(2);
      expect(acceptedNames(r)).to.deep.equal(['b']);
      expect(r.overCap).to.equal(1);
      // Known names never trigger a read, however stale.
      clock += 60_000;
      limits.admitVars(K, [v('a'), v('c')]);
      expect(store.reads).to.equal(2);
    });

    it('keeps names admitted here that the store does not have yet across a re-read', async () => {
      limits = make({ maxVarsPerKey: 2, newVarsBurst: 5 });
      await admit(K, [v('a'), v('b')]);
      clock += 10_000;
      const r = await admit(K, [v('c')]);
      expect(r.overCap).to.equal(1);
      expect(limits.keyInfo(K)?.knownVars).to.equal(2);
    });

    it('shares one read among the lines that wait for it', async () => {
      limits.acquireKey(K);
      const a = limits.admitVars(K, [v('a')]);
      const b = limits.admitVars(K, [v('b')]);
      await Promise.all([a, b]);
      expect(store.reads).to.equal(1);
      expect(limits.keyInfo(K)?.knownVars).to.equal(2);
    });

    it('decides with what it knows while the store is down, and reads again after varsRefreshMs', async () => {
      store.failing = true;
      expect((await admit(K, [v('a')])).accepted).to.have.length(1);
      store.failing = false;
      store.stored.set(K, ['s']);
      await admit(K, [v('b')]);
      expect(store.reads).to.equal(1);
      clock += 5000;
      await admit(K, [v('c')]);
      expect(store.reads).to.equal(2);
      expect(limits.keyInfo(K)?.knownVars).to.equal(4);
    });

    it('forgets the names of a key with no connection left, and reads them again on its next connection', async () => {
      limits.acquireKey(K);
      await admit(K, [v('a')]);
      limits.releaseKey(K);
      expect(limits.keyInfo(K)?.knownVars).to.equal(null);
      store.stored.set(K, ['a']);
      limits.acquireKey(K);
      expect(store.reads).to.equal(2);
    });

    it('decides a line that arrives after the last connection went on the stored names, and keeps nothing', async () => {
      limits = make({ maxVarsPerKey: 2 });
      store.stored.set(K, ['a', 'b']);
      const r = await limits.admitVars(K, [v('a'), v('c')]);
      expect(acceptedNames(r)).to.deep.equal(['a']);
      expect(r.overCap).to.equal(1);
      expect(limits.keyInfo(K)?.knownVars).to.equal(null);
    });
  });

  describe('connections', () => {
    it('holds maxConnectionsPerKey per key, refuses the next, and frees a slot on release', () => {
      for (let i = 0; i < 3; i++) expect(limits.acquireKey(K)).to.equal(true);
      expect(limits.acquireKey(K)).to.equal(false);
      expect(limits.acquireKey(K2), 'another key is not affected').to.equal(true);
      expect(refusals).to.deep.equal([['connections_per_key', K, 1]]);
      limits.releaseKey(K);
      expect(limits.acquireKey(K)).to.equal(true);
      expect(limits.keyInfo(K)?.connections).to.equal(3);
    });

    it('holds maxConnectionsPerAddress per address, and never goes below zero', () => {
      expect(limits.acquireAddress('10.0.0.1')).to.equal(true);
      expect(limits.acquireAddress('10.0.0.1')).to.equal(true);
      expect(limits.acquireAddress('10.0.0.1')).to.equal(false);
      expect(limits.acquireAddress('10.0.0.2')).to.equal(true);
      expect(refusals).to.deep.equal([['connections_per_address', null, 1]]);
      for (let i = 0; i < 5; i++) limits.releaseAddress('10.0.0.1');
      expect(limits.connectionsFrom('10.0.0.1')).to.equal(0);
      expect(limits.stats().addresses).to.equal(1);
      limits.releaseKey('NEVERSEEN000');
      expect(limits.keyInfo('NEVERSEEN000')).to.equal(null);
    });
  });

  describe('admitLogs', () => {
    it('allows logsBurst at once, the first entries of the line, then logsPerSecond', () => {
      expect(limits.admitLogs(K, 150)).to.equal(150);
      expect(limits.admitLogs(K, 100)).to.equal(50);
      expect(refusals).to.deep.equal([['logs_per_second', K, 50]]);
      expect(limits.admitLogs(K, 10)).to.equal(0);
      clock += 100; // 100/s: 10 entries
      expect(limits.admitLogs(K, 30)).to.equal(10);
      expect(limits.admitLogs(K2, 200), 'another key has its own budget').to.equal(200);
      clock += 60_000;
      expect(limits.admitLogs(K, 1000)).to.equal(200);
    });

    it('never refuses an empty line (the SDK heartbeat) and survives a clock stepping back', () => {
      limits.admitLogs(K, 200);
      expect(limits.admitLogs(K, 0)).to.equal(0);
      expect(refusals).to.deep.equal([]);
      clock -= 10_000;
      expect(limits.admitLogs(K, 1)).to.equal(0);
      clock += 10_000 + 1000;
      expect(limits.admitLogs(K, 100)).to.equal(100);
    });

    it('keeps a spent budget across a reconnect: disconnecting does not refill it', () => {
      limits.acquireKey(K);
      limits.admitLogs(K, 200);
      limits.releaseKey(K);
      clock += 61_000; // a sweep runs on this release
      limits.acquireKey(K);
      limits.releaseKey(K);
      expect(limits.admitLogs(K, 1000)).to.equal(200);
      limits.admitLogs(K, 1);
      limits.acquireKey(K);
      limits.releaseKey(K);
      expect(limits.admitLogs(K, 1)).to.equal(0);
    });
  });

  describe('many keys', () => {
    const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

    it('forgets idle keys once their buckets have refilled, and keeps those still limited', async () => {
      for (let i = 0; i < 1000; i++) {
        const key = `MANYKEYS${String(i).padStart(4, '0')}`;
        limits.acquireKey(key);
        if (i === 7) limits.admitLogs(key, 200);
        limits.releaseKey(key);
      }
      await settle(); // the name reads each connection started
      expect(limits.stats().keys).to.equal(1000);
      expect(limits.stats().keysWithNames).to.equal(0);
      // The sweep runs on a release at most once a minute. Key 7 spent its log budget a minute ago
      // and has refilled (200 at 100/s): every idle key goes.
      clock += 60_000;
      limits.acquireKey(K);
      await settle();
      limits.releaseKey(K);
      expect(limits.stats().keys).to.equal(0);
      // Spent half a second before the next sweep: still limited, so kept; a connected key is kept.
      limits.acquireKey(K);
      await settle();
      clock += 59_500;
      limits.admitLogs('MANYKEYS0008', 200);
      clock += 500;
      limits.acquireKey(K2);
      await settle();
      limits.releaseKey(K2);
      expect(limits.keyInfo('MANYKEYS0008')).to.not.equal(null);
      expect(limits.keyInfo(K)?.connections).to.equal(1);
      expect(limits.keyInfo(K2)).to.equal(null);
      expect(limits.admitLogs('MANYKEYS0008', 200)).to.equal(50);
    });
  });
});

describe('limits/limit-metrics', () => {
  it('labels the first metricsMaxKeys keys that hit a limit, and counts the others under _other', async () => {
    const registry = new Registry();
    const r = new LimitRefusals(registry, 2);
    r.add('vars_per_key', 'KEYAAAAAAAAA', 3);
    r.add('logs_per_second', 'KEYBBBBBBBBB', 5);
    r.add('logs_per_second', 'KEYCCCCCCCCC', 7);
    r.add('logs_per_second', 'KEYDDDDDDDDD', 1);
    r.add('logs_per_second', 'KEYAAAAAAAAA', 2);
    r.add('connections_per_address', null, 4);
    const { values } = await r.counter.get();
    const got = Object.fromEntries(values.map((x) => [`${x.labels.limit}/${x.labels.apiKey}`, x.value]));
    expect(got).to.deep.equal({
      'vars_per_key/KEYAAAAAAAAA': 3,
      'logs_per_second/KEYBBBBBBBBB': 5,
      'logs_per_second/_other': 8,
      'logs_per_second/KEYAAAAAAAAA': 2,
      'connections_per_address/_none': 4,
    });
  });
});
