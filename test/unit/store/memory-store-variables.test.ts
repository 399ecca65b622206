/**
 * The embedded store's §8 data across crashes and restarts: committed overrides, strategies and
 * history (and labels, reports, last-sent, devices) come back from the journal without a stop(), and
 * from the version 3 snapshot after one; a version 2 snapshot (before §8) still loads.
 */
import { expect } from 'chai';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { segmentName } from '../../../src/store/journal.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { compareHistoryIds, parseHistoryId } from '../../../src/store/variables-common.js';
import { commit as describeCommit } from '../../../src/variables/history.js';
import { makeOverride } from '../../../src/variables/overrides.js';
import type { Op } from '../../../src/variables/strategies.js';
import { ALL } from '../../../src/variables/target.js';
import { tempDir } from '../../helpers/processes.js';

const cfg = { snapshotIntervalMs: 0, sessionTtlMs: 60_000, outboxMaxPerKey: 16, journalFsyncMs: 1000, journalCompactBytes: 1 << 24 };
type HistoryId = { ms: number; seq: number };
const KEY = 'AAAAAAAAAAAA';
const BOUNDS = { maxEntries: 100, maxAgeMs: 365 * 24 * 3600_000 };

async function commitOps(store: MemoryStore, ops: Op[], at: number): Promise<string> {
  const state = await store.readState(KEY);
  const { draft } = describeCommit(state, ops, { at, actor: 'ana', action: 'override.set', target: null });
  const r = await store.commit(KEY, ops, draft, { stateVersion: state.stateVersion }, BOUNDS, 'ana');
  if (!r.ok) throw new Error('commit refused');
  return r.entry.id;
}

describe('MemoryStore §8 data durability', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir('observerio-vstore-durable-');
  });
  afterEach(() => dir.remove());

  async function fill(store: MemoryStore, now: number): Promise<{ ids: string[] }> {
    const ids: string[] = [];
    ids.push(await commitOps(store, [{ kind: 'override.set', override: makeOverride({ name: 'speed', type: 'integer', value: '3' }, { devices: ['d1', 'd2'] }, 'ana', now) }], now));
    ids.push(await commitOps(store, [{ kind: 'strategy.put', strategy: { name: 'fast', vars: [{ name: 'speed', type: 'integer', value: '9' }] } }], now + 1));
    ids.push(await commitOps(store, [{ kind: 'override.set', override: makeOverride({ name: 'jump', type: 'string', value: 'hi' }, ALL, 'ana', now + 2, 'fast') }], now + 2));
    await store.setDelivered(KEY, ids[0] as string, 2);
    await store.touchDevice(KEY, { deviceId: 'd1', address: '1.2.3.4:5', generated: false }, now, 30_000);
    await store.setLabels(KEY, 'd1', { platform: 'android' });
    await store.setReported(KEY, 'd1', [{ name: 'speed', type: 'integer', value: '1' }]);
    await store.setLastSent(KEY, 'd1', [{ name: 'speed', type: 'integer', value: '3' }], true);
    return { ids };
  }

  async function expectFilled(store: MemoryStore, now: number, ids: string[]): Promise<void> {
    const s = await store.readState(KEY);
    expect(s.stateVersion).to.equal(3);
    expect(s.overrides.map((o) => [o.name, o.value, o.target])).to.deep.equal([
      ['speed', '3', { devices: ['d1', 'd2'] }],
      ['jump', 'hi', ALL],
    ]);
    expect(s.strategies).to.deep.equal([{ name: 'fast', vars: [{ name: 'speed', type: 'integer', value: '9' }], version: 1, updatedAt: now + 1, updatedBy: 'ana' }]);
    const h = await store.listHistory(KEY, { limit: 10 });
    expect(h.map((e) => e.id)).to.deep.equal([...ids].reverse());
    expect(h.map((e) => e.delivered)).to.deep.equal([0, 0, 2]);
    expect(await store.getDevice(KEY, 'd1', now)).to.deep.equal({ deviceId: 'd1', labels: { platform: 'android' }, online: true, lastSeen: now, lastAddress: '1.2.3.4:5', generated: false });
    expect(await store.getReported(KEY, 'd1')).to.deep.equal([{ name: 'speed', type: 'integer', value: '1' }]);
    expect(await store.getLastSent(KEY, 'd1')).to.deep.equal(new Map([['speed', { name: 'speed', type: 'integer', value: '3' }]]));
    // A new commit continues the ids and the version.
    const next = await commitOps(store, [{ kind: 'override.clear', name: 'jump', target: ALL }], now + 3);
    expect(compareHistoryIds(parseHistoryId(next) as HistoryId, parseHistoryId(ids.at(-1) as string) as HistoryId)).to.be.greaterThan(0);
    expect((await store.readState(KEY)).stateVersion).to.equal(4);
  }

  it('keeps everything committed when the process dies without stop() (journal replay)', async () => {
    const now = Date.now();
    const a = new MemoryStore(cfg, { dataDir: dir.path });
    await a.start();
    const { ids } = await fill(a, now);
    // No a.stop(): what kill -9 leaves behind, as far as the files go.
    const b = new MemoryStore(cfg, { dataDir: dir.path });
    await b.start();
    await expectFilled(b, now, ids);
    await b.stop();
  });

  it('keeps everything in the version 3 snapshot across a clean stop', async () => {
    const now = Date.now();
    const a = new MemoryStore(cfg, { dataDir: dir.path });
    await a.start();
    const { ids } = await fill(a, now);
    await a.stop();
    const snap = JSON.parse(readFileSync(join(dir.path, 'store.json'), 'utf8')) as { version: number; variables: unknown[] };
    expect(snap.version).to.equal(3);
    expect(snap.variables).to.have.length(1);
    const b = new MemoryStore(cfg, { dataDir: dir.path });
    await b.start();
    await expectFilled(b, now, ids);
    await b.stop();
  });

  it('fsyncs a commit before it resolves (it is durable, not only in the kernel)', async () => {
    const a = new MemoryStore({ ...cfg, journalFsyncMs: 60_000 }, { dataDir: dir.path });
    await a.start();
    const journal = (a as unknown as { journal: { stats: { fsyncs: number } } }).journal;
    const before = journal.stats.fsyncs;
    await a.touchDevice(KEY, { deviceId: 'd', address: null, generated: false }, Date.now(), 1000);
    expect(journal.stats.fsyncs, 'telemetry waits for the group fsync').to.equal(before);
    await commitOps(a, [{ kind: 'override.set', override: makeOverride({ name: 'x', type: 'string', value: '1' }, ALL, 'ana', 1) }], Date.now());
    expect(journal.stats.fsyncs).to.be.greaterThan(before);
    const mid = journal.stats.fsyncs;
    await a.setLabels(KEY, 'd', { platform: 'ios' });
    expect(journal.stats.fsyncs).to.be.greaterThan(mid);
    await a.stop();
  });

  it('journals what a report turn changed, not the whole reported list, and replays it to the same list', async () => {
    const a = new MemoryStore(cfg, { dataDir: dir.path });
    await a.start();
    const whole = Array.from({ length: 1000 }, (_, i) => ({ name: `var${i}`, type: 'string', value: `v${i}` }));
    const size = () => statSync(join(dir.path, segmentName(1))).size;
    await a.setReported(KEY, 'd', whole);
    const first = size();
    expect(first).to.be.above(30_000);
    // One value changed, one name appended: what a fold of reports gives.
    const next = [...whole.slice(0, 10), { name: 'var10', type: 'string', value: 'changed' }, ...whole.slice(11), { name: 'fresh', type: 'integer', value: '1' }];
    await a.setReported(KEY, 'd', next);
    expect(size() - first).to.be.below(400);
    const second = size();
    await a.setReported(KEY, 'd', next);
    expect(size(), 'nothing changed, nothing journaled').to.equal(second);
    // Another shape (names dropped, reordered) is journaled whole.
    await a.setReported(KEY, 'e', [{ name: 'x', type: 'string', value: '1' }, { name: 'y', type: 'string', value: '2' }]);
    await a.setReported(KEY, 'e', [{ name: 'y', type: 'string', value: '3' }]);
    expect(await a.getReported(KEY, 'd')).to.deep.equal(next);
    // No stop(): the journal alone rebuilds both lists.
    const b = new MemoryStore(cfg, { dataDir: dir.path });
    await b.start();
    expect(await b.getReported(KEY, 'd')).to.deep.equal(next);
    expect(await b.getReported(KEY, 'e')).to.deep.equal([{ name: 'y', type: 'string', value: '3' }]);
    await b.stop();
  });

  it('journals only plain values, however a caller built them', async () => {
    const a = new MemoryStore(cfg, { dataDir: dir.path });
    await a.start();
    const extra = { name: 'n', type: 'string', value: 'v', secret: 'not for the journal' };
    await a.setReported(KEY, 'd', [extra]);
    await a.setLastSent(KEY, 'd', [extra], true);
    await a.setLabels(KEY, 'd', Object.assign(Object.create({ inherited: 'not for the journal' }) as object, { platform: 'ios' }));
    const o = { ...makeOverride(extra, ALL, 'ana', 1), secret: 'not for the journal' };
    await commitOps(a, [{ kind: 'override.set', override: o }], Date.now());
    expect(await a.getReported(KEY, 'd')).to.deep.equal([{ name: 'n', type: 'string', value: 'v' }]);
    expect((await a.getDevice(KEY, 'd', Date.now()))).to.equal(null);
    expect((await a.listOverrides(KEY))[0]).to.not.have.property('secret');
    expect(readFileSync(join(dir.path, segmentName(1)), 'utf8')).to.not.include('not for the journal');
    await a.stop();
    expect(readFileSync(join(dir.path, 'store.json'), 'utf8')).to.not.include('not for the journal');
  });

  it('loads a version 2 snapshot (before §8) with no §8 data, and saves it again as version 3', async () => {
    const v2 = { version: 2, savedAt: 1, seq: 0, users: [], sessions: [], vars: [[KEY, [{ name: 'a', type: 'string', value: '1' }]]], outbox: [] };
    writeFileSync(join(dir.path, 'store.json'), JSON.stringify(v2));
    const a = new MemoryStore(cfg, { dataDir: dir.path });
    await a.start();
    expect(await a.getVars(KEY)).to.deep.equal([{ name: 'a', type: 'string', value: '1' }]);
    expect(await a.readState(KEY)).to.deep.equal({ overrides: [], strategies: [], stateVersion: 0 });
    await commitOps(a, [{ kind: 'override.set', override: makeOverride({ name: 'x', type: 'string', value: '1' }, ALL, 'ana', 1) }], Date.now());
    await a.stop();
    const snap = JSON.parse(readFileSync(join(dir.path, 'store.json'), 'utf8')) as { version: number; vars: unknown };
    expect(snap.version).to.equal(3);
    expect(snap.vars).to.deep.equal(v2.vars);
  });

  it('sets a snapshot with a malformed §8 section aside rather than load half of it', async () => {
    const bad = { version: 3, savedAt: 1, seq: 0, users: [], sessions: [], vars: [], outbox: [], variables: [[KEY, { overrides: 'nope' }]] };
    writeFileSync(join(dir.path, 'store.json'), JSON.stringify(bad));
    const a = new MemoryStore(cfg, { dataDir: dir.path });
    await a.start();
    expect(await a.readState(KEY)).to.deep.equal({ overrides: [], strategies: [], stateVersion: 0 });
    await a.stop();
  });
});
