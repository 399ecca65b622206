/**
 * The one VariablesStore contract suite (src/variables/store-contract.ts, DESIGN.md §8): every store
 * (memory, Redis) must pass it unchanged. The factory returns a started store; cleanup stops it.
 */
import { expect } from 'chai';
import { ObserverioError } from '../../src/errors.js';
import type { Var } from '../../src/model.js';
import { newApiKey } from '../../src/store/passwords.js';
import type { Store } from '../../src/store/store.js';
import { HISTORY_ID_RE } from '../../src/store/variables-common.js';
import { commit as describeCommit, rollback, type HistoryAction, type HistoryBounds, type HistoryEntry } from '../../src/variables/history.js';
import { makeOverride } from '../../src/variables/overrides.js';
import { EARLIER_STATES, type CommitResult, type StrategyRecord, type VariablesStore } from '../../src/variables/store-contract.js';
import type { Op } from '../../src/variables/strategies.js';
import { ALL, type Target } from '../../src/variables/target.js';

export type FullStore = Store & VariablesStore;

export interface VariablesStoreFixture {
  store: FullStore;
  cleanup(): Promise<void>;
}

const v = (name: string, value: string, type = 'string'): Var => ({ name, type, value });
const BOUNDS: HistoryBounds = { maxEntries: 1000, maxAgeMs: 365 * 24 * 3600_000 };
const TTL = 30_000;

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

function set(name: string, value: string, target: Target = ALL, at = Date.now(), strategy?: string): Op {
  return { kind: 'override.set', override: makeOverride(v(name, value), target, 'ana@example.com', at, strategy) };
}
const clear = (name: string, target: Target = ALL): Op => ({ kind: 'override.clear', name, target });
const put = (name: string, vars: Var[]): Op => ({ kind: 'strategy.put', strategy: { name, vars } });

export function variablesStoreContract(name: string, makeStore: () => Promise<VariablesStoreFixture>): void {
  describe(`VariablesStore contract: ${name}`, function () {
    this.timeout(20_000);
    let store: FullStore;
    let cleanup: () => Promise<void>;
    let key: string;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
      key = newApiKey();
    });
    afterEach(async () => {
      await cleanup();
    });

    /** Reads the state, describes the ops as history.ts does and commits them at the version read. */
    async function change(ops: Op[], opts: { at?: number; action?: HistoryAction; bounds?: HistoryBounds; apiKey?: string; by?: string; strategy?: { name: string; version: number | null } } = {}): Promise<CommitResult> {
      const apiKey = opts.apiKey ?? key;
      const state = await store.readState(apiKey);
      const { draft } = describeCommit(state, ops, { at: opts.at ?? Date.now(), actor: 'ana@example.com', action: opts.action ?? 'override.set', target: null });
      const expectation = opts.strategy ? { stateVersion: state.stateVersion, strategy: opts.strategy } : { stateVersion: state.stateVersion };
      return store.commit(apiKey, ops, draft, expectation, opts.bounds ?? BOUNDS, opts.by ?? 'ana@example.com');
    }

    async function ok(ops: Op[], opts: Parameters<typeof change>[1] = {}): Promise<HistoryEntry> {
      const r = await change(ops, opts);
      if (!r.ok) throw new Error(`commit refused at version ${r.stateVersion}`);
      return r.entry;
    }

    describe('commit, readState', () => {
      it('starts empty at version 0', async () => {
        expect(await store.readState(key)).to.deep.equal({ overrides: [], strategies: [], stateVersion: 0 });
        expect(await store.listHistory(key, { limit: 10 })).to.deep.equal([]);
        expect(await store.listOverrides(key)).to.deep.equal([]);
        expect(await store.listStrategies(key)).to.deep.equal([]);
        expect(await store.getStrategy(key, 'fast')).to.equal(null);
      });

      it('applies the ops, appends the entry with a store-given id and bumps the version', async () => {
        const op = set('speed', '2', ALL, 1_700_000_000_000);
        const state = await store.readState(key);
        const { draft } = describeCommit(state, [op], { at: 1_700_000_000_500, actor: 'ana@example.com', action: 'override.set', target: ALL });
        const r = await store.commit(key, [op], draft, { stateVersion: 0 }, BOUNDS, 'ana@example.com');
        expect(r.ok).to.equal(true);
        if (!r.ok) return;
        expect(r.stateVersion).to.equal(1);
        expect(r.entry.id).to.match(HISTORY_ID_RE);
        expect(r.entry).to.deep.equal({ id: r.entry.id, ...draft });
        const after = await store.readState(key);
        expect(after.stateVersion).to.equal(1);
        expect(after.overrides).to.deep.equal([(op as { override: object }).override]);
        expect(await store.listOverrides(key)).to.deep.equal(after.overrides);
        expect(await store.listHistory(key, { limit: 10 })).to.deep.equal([r.entry]);
        expect(await store.getHistoryEntry(key, r.entry.id)).to.deep.equal(r.entry);
      });

      it('keeps applyOps order: a replaced override keeps its place, a cleared one goes, a new one goes last', async () => {
        await ok([set('a', '1'), set('b', '1', { devices: ['d1'] }), set('c', '1')]);
        await ok([set('a', '2')]);
        await ok([clear('b', { devices: ['d1'] }), set('d', '1')]);
        const s = await store.readState(key);
        expect(s.overrides.map((o) => `${o.name}=${o.value}`)).to.deep.equal(['a=2', 'c=1', 'd=1']);
        // Clear then set in one commit: gone from its place, back at the end (Map semantics).
        await ok([clear('a'), set('a', '3')]);
        expect((await store.listOverrides(key)).map((o) => `${o.name}=${o.value}`)).to.deep.equal(['c=1', 'd=1', 'a=3']);
        expect((await store.readState(key)).stateVersion).to.equal(4);
      });

      it('hands out the same list while nothing changed, and a list read stays as it was while later commits change the state', async () => {
        await ok([set('a', '1'), set('b', '1'), set('c', '1', { devices: ['d1'] })]);
        const first = await store.readState(key);
        const asRead = JSON.stringify(first.overrides);
        expect((await store.readState(key)).overrides).to.equal(first.overrides);
        for (const o of first.overrides) expect(Object.isFrozen(o)).to.equal(true);
        await ok([set('a', '2')]);
        await ok([set('d', '1')]);
        await ok([clear('b')]);
        await ok([clear('c', { devices: ['d1'] }), set('c', '2', { devices: ['d1'] })]);
        expect(JSON.stringify(first.overrides)).to.equal(asRead);
        const now = await store.readState(key);
        expect(now.overrides.map((o) => `${o.name}=${o.value}`)).to.deep.equal(['a=2', 'd=1', 'c=2']);
        // listOverrides is the caller's own copy.
        const mine = await store.listOverrides(key);
        mine.pop();
        expect((await store.readState(key)).overrides).to.have.length(3);
      });

      it('hands out frozen overrides however many commits replaced them (the client actors reuse winners of frozen ones only)', async () => {
        await ok([set('a', '0'), set('b', '0'), set('c', '0')]);
        // Past a hundred replacements a store's caches of parsed records start over (Redis: the parse cache).
        for (let i = 1; i <= 150; i++) {
          await ok([set(['a', 'b', 'c'][i % 3] as string, String(i))]);
          if (i % 25 === 0 || i > 140) {
            const s = await store.readState(key);
            for (const o of s.overrides) expect(Object.isFrozen(o) && Object.isFrozen(o.target), `after ${i} commits: ${o.name}`).to.equal(true);
            for (const o of (await store.lastState(key)).overrides) expect(Object.isFrozen(o), `lastState after ${i} commits`).to.equal(true);
          }
        }
        expect((await store.readState(key)).overrides.map((o) => `${o.name}=${o.value}`)).to.deep.equal(['a=150', 'b=148', 'c=149']);
      });

      it('lastState is the state readState gives, after this store’s own commits, for a key it never read too', async () => {
        expect(await store.lastState(key)).to.deep.equal({ overrides: [], strategies: [], stateVersion: 0 });
        await ok([set('a', '1'), put('fast', [v('a', '2')])], { action: 'strategy.create' });
        expect(await store.lastState(key)).to.deep.equal(await store.readState(key));
        await ok([set('a', '3'), clear('a'), set('b', '1')]);
        const last = await store.lastState(key);
        expect(last).to.deep.equal(await store.readState(key));
        expect(last.stateVersion).to.equal(2);
        expect(last.overrides.map((o) => o.name)).to.deep.equal(['b']);
        expect(await store.lastState(newApiKey())).to.deep.equal({ overrides: [], strategies: [], stateVersion: 0 });
      });

      it('lastState at a version is the state at exactly that version while the store holds it (its last few), else as without one', async () => {
        await ok([set('a', '1')]);
        const v1 = await store.readState(key);
        await ok([set('a', '2'), put('fast', [v('a', '3')])], { action: 'strategy.create' });
        const v2 = await store.readState(key);
        await ok([clear('a'), set('b', '1')]);
        const v3 = await store.readState(key);
        expect([v1, v2, v3].map((s) => s.stateVersion)).to.deep.equal([1, 2, 3]);
        // A delivery pass of the first commit, run after the next two.
        expect(await store.lastState(key, 1)).to.deep.equal(v1);
        expect(await store.lastState(key, 2)).to.deep.equal(v2);
        expect(await store.lastState(key, 3)).to.deep.equal(v3);
        expect(await store.lastState(key, 9)).to.deep.equal(v3);
        for (let i = 0; i <= EARLIER_STATES; i++) await ok([set('c', String(i))]);
        const now = await store.readState(key);
        // Gone from the last few: the newest, as without a version.
        expect(await store.lastState(key, 1)).to.deep.equal(now);
        const previous = await store.lastState(key, now.stateVersion - 1);
        expect(previous.stateVersion).to.equal(now.stateVersion - 1);
        expect(previous.overrides.map((o) => `${o.name}=${o.value}`)).to.deep.equal(['b=1', `c=${EARLIER_STATES - 1}`]);
        for (const o of previous.overrides) expect(Object.isFrozen(o)).to.equal(true);
        expect(await store.lastState(newApiKey(), 1)).to.deep.equal({ overrides: [], strategies: [], stateVersion: 0 });
      });

      it('keeps overrides of one variable on different targets apart', async () => {
        await ok([set('speed', '1'), set('speed', '2', { devices: ['d1', 'd2'] }), set('speed', '3', { labels: { platform: 'android' } })]);
        const o = await store.listOverrides(key);
        expect(o.map((x) => [x.value, x.target])).to.deep.equal([
          ['1', ALL],
          ['2', { devices: ['d1', 'd2'] }],
          ['3', { labels: { platform: 'android' } }],
        ]);
      });

      it('refuses a commit computed from a stale version and changes nothing', async () => {
        await ok([set('a', '1')]);
        const state = await store.readState(key);
        const { draft } = describeCommit(state, [set('a', '2')], { at: Date.now(), actor: 'x', action: 'override.set', target: null });
        const r = await store.commit(key, [set('a', '2')], draft, { stateVersion: 0 }, BOUNDS, 'x');
        expect(r).to.deep.equal({ ok: false, stateVersion: 1 });
        expect((await store.listOverrides(key)).map((o) => o.value)).to.deep.equal(['1']);
        expect(await store.listHistory(key, { limit: 10 })).to.have.length(1);
      });

      it('of two commits from the same read exactly one wins, and the state is the winner’s, never a mix', async () => {
        await ok([set('base', '0')]);
        for (let round = 0; round < 5; round++) {
          const state = await store.readState(key);
          const opsA = [set('x', `a${round}`), set('y', `a${round}`)];
          const opsB = [set('x', `b${round}`), set('y', `b${round}`), clear('base')];
          const meta = { at: Date.now(), actor: 'x', action: 'override.set' as const, target: null };
          const [ra, rb] = await Promise.all([
            store.commit(key, opsA, describeCommit(state, opsA, meta).draft, { stateVersion: state.stateVersion }, BOUNDS, 'a'),
            store.commit(key, opsB, describeCommit(state, opsB, meta).draft, { stateVersion: state.stateVersion }, BOUNDS, 'b'),
          ]);
          expect([ra.ok, rb.ok].filter(Boolean)).to.have.length(1);
          const loser = ra.ok ? rb : ra;
          expect(loser.stateVersion).to.equal(state.stateVersion + 1);
          const after = await store.readState(key);
          expect(after.stateVersion).to.equal(state.stateVersion + 1);
          const winner = ra.ok ? 'a' : 'b';
          const values = after.overrides.filter((o) => o.name === 'x' || o.name === 'y').map((o) => o.value);
          expect(values).to.deep.equal([`${winner}${round}`, `${winner}${round}`]);
          // The loser retries from the fresh state and gets in.
          const retry = await ok(ra.ok ? opsB : opsA);
          expect(retry.id).to.match(HISTORY_ID_RE);
        }
        expect(await store.listHistory(key, { limit: 100 })).to.have.length(11);
      });

      it('commitMany applies commits computed one after the other exactly as committing them one by one would', async () => {
        const t = 1_700_000_000_000;
        await ok([set('base', '0', ALL, t - 10), set('gone', '0', ALL, t - 10)], { at: t - 10 });
        const other = newApiKey();
        await ok([set('base', '0', ALL, t - 10), set('gone', '0', ALL, t - 10)], { apiKey: other, at: t - 10 });
        const steps: Array<{ ops: Op[]; action: HistoryAction; by: string }> = [
          { ops: [set('a', '1', ALL, t)], action: 'override.set', by: 'ana@example.com' },
          { ops: [set('a', '2', ALL, t + 1), set('b', '1', { devices: ['d1'] }, t + 1)], action: 'override.set', by: 'bo@example.com' },
          { ops: [clear('gone'), put('fast', [v('a', '9')])], action: 'strategy.create', by: 'ana@example.com' },
          { ops: [put('fast', [v('a', '8')]), set('gone', '1', ALL, t + 3)], action: 'strategy.update', by: 'ana@example.com' },
        ];
        // Each computed from the state the ones before it leave, as VarChanges computes a batch.
        let state = await store.readState(key);
        const version = state.stateVersion;
        const commits = [];
        for (const [i, step] of steps.entries()) {
          const { state: next, draft } = describeCommit({ overrides: state.overrides, strategies: state.strategies }, step.ops, { at: t + i, actor: step.by, action: step.action, target: null });
          commits.push({ ops: step.ops, draft, by: step.by });
          state = { ...state, overrides: [...next.overrides], strategies: state.strategies };
        }
        const r = await store.commitMany(key, commits, version, BOUNDS);
        if (!r.ok) throw new Error('commitMany refused');
        expect(r.stateVersion).to.equal(version + steps.length);
        expect(r.entries).to.have.length(steps.length);
        const history = await store.listHistory(key, { limit: 10 });
        expect(history.slice(0, steps.length).map((e) => e.id)).to.deep.equal(r.entries.map((e) => e.id).reverse());
        for (const e of r.entries) expect(e.id).to.match(HISTORY_ID_RE);
        // The same commits one by one on another key.
        for (const [i, c] of commits.entries()) {
          const one = await store.commit(other, c.ops, c.draft, { stateVersion: version + i }, BOUNDS, c.by);
          expect(one.ok, `commit ${i}`).to.equal(true);
        }
        expect(await store.readState(key)).to.deep.equal(await store.readState(other));
        const strip = (list: HistoryEntry[]) => list.map(({ id: _id, ...rest }) => rest);
        expect(strip(await store.listHistory(key, { limit: 10 }))).to.deep.equal(strip(await store.listHistory(other, { limit: 10 })));
        expect((await store.getStrategy(key, 'fast'))?.version).to.equal(2);
      });

      it('commitMany refuses a stale version and writes none of its commits', async () => {
        await ok([set('a', '1')]);
        const state = await store.readState(key);
        const meta = { at: Date.now(), actor: 'x', action: 'override.set' as const, target: null };
        const commits = [set('a', '2'), set('b', '2')].map((op) => ({ ops: [op], draft: describeCommit(state, [op], meta).draft, by: 'x' }));
        expect(await store.commitMany(key, commits, 0, BOUNDS)).to.deep.equal({ ok: false, stateVersion: 1 });
        expect((await store.listOverrides(key)).map((o) => [o.name, o.value])).to.deep.equal([['a', '1']]);
        expect(await store.listHistory(key, { limit: 10 })).to.have.length(1);
        expect((await store.readState(key)).stateVersion).to.equal(1);
        // Nothing to commit changes nothing either.
        expect(await store.commitMany(key, [], 1, BOUNDS)).to.deep.equal({ ok: true, entries: [], stateVersion: 1 });
        // And a bound that is not a positive integer is refused as commit refuses it.
        expect(await rejection(store.commitMany(key, commits, 1, { maxEntries: 0, maxAgeMs: 1000 }))).to.be.instanceOf(Error);
      });

      it('commitMany chained: taken right behind the commit on its way, in order; refused behind a refused one, nothing written', async () => {
        await ok([set('a', '1')]);
        const meta = { at: Date.now(), actor: 'x', action: 'override.set' as const, target: null };
        const state = await store.readState(key);
        const first = describeCommit(state, [set('a', '2')], meta);
        const afterFirst = { ...state, overrides: first.state.overrides };
        // The second computed from what the first leaves, and sent before the first's answer.
        const pa = store.commitMany(key, [{ ops: [set('a', '2')], draft: first.draft, by: 'x' }], 1, BOUNDS);
        const pb = store.commitMany(key, [{ ops: [set('b', '1')], draft: describeCommit(afterFirst, [set('b', '1')], meta).draft, by: 'x' }], 2, BOUNDS, { chained: true });
        const [ra, rb] = await Promise.all([pa, pb]);
        if (!ra.ok || !rb.ok) throw new Error('a chained commit was refused');
        expect([ra.stateVersion, rb.stateVersion]).to.deep.equal([2, 3]);
        expect((await store.listOverrides(key)).map((o) => [o.name, o.value])).to.deep.equal([['a', '2'], ['b', '1']]);
        expect((await store.listHistory(key, { limit: 10 })).slice(0, 2).map((e) => e.id)).to.deep.equal([rb.entries[0]?.id, ra.entries[0]?.id]);
        // Computed from a state that is not the key's (version 2, refused), and one chained on it at
        // the version it would have left, which is the key's version now: both refused.
        const now = await store.readState(key);
        const stale = store.commitMany(key, [{ ops: [set('c', '1')], draft: describeCommit(now, [set('c', '1')], meta).draft, by: 'x' }], 2, BOUNDS);
        const behind = store.commitMany(key, [{ ops: [set('d', '1')], draft: describeCommit(now, [set('d', '1')], meta).draft, by: 'x' }], 3, BOUNDS, { chained: true });
        expect(await stale).to.deep.equal({ ok: false, stateVersion: 3 });
        expect((await behind).ok).to.equal(false);
        // Nor is a chained commit taken when the store's last commit was refused, whatever the version.
        expect((await store.commitMany(key, [{ ops: [set('d', '1')], draft: describeCommit(now, [set('d', '1')], meta).draft, by: 'x' }], 3, BOUNDS, { chained: true })).ok).to.equal(false);
        expect((await store.listOverrides(key)).map((o) => o.name)).to.deep.equal(['a', 'b']);
        expect(await store.listHistory(key, { limit: 10 })).to.have.length(3);
        expect((await store.readState(key)).stateVersion).to.equal(3);
        // A commit at the key's version, not chained, is taken as ever; one chained right behind it too.
        const c = await store.commitMany(key, [{ ops: [set('c', '1')], draft: describeCommit(now, [set('c', '1')], meta).draft, by: 'x' }], 3, BOUNDS);
        expect(c.ok).to.equal(true);
        const d = await store.commitMany(key, [{ ops: [set('d', '1')], draft: describeCommit(now, [set('d', '1')], meta).draft, by: 'x' }], 4, BOUNDS, { chained: true });
        expect(d).to.include({ ok: true, stateVersion: 5 });
        expect((await store.listOverrides(key)).map((o) => o.name)).to.deep.equal(['a', 'b', 'c', 'd']);
      });

      it('commitMany prunes the history to its bounds, and two of them from one read: exactly one wins', async () => {
        const state = await store.readState(key);
        const meta = { at: Date.now(), actor: 'x', action: 'override.set' as const, target: null };
        const many = (prefix: string) => Array.from({ length: 7 }, (_, i) => set(`${prefix}${i}`, '1')).map((op) => ({ ops: [op], draft: describeCommit(state, [op], meta).draft, by: 'x' }));
        const [ra, rb] = await Promise.all([store.commitMany(key, many('a'), 0, { ...BOUNDS, maxEntries: 5 }), store.commitMany(key, many('b'), 0, { ...BOUNDS, maxEntries: 5 })]);
        expect([ra.ok, rb.ok].filter(Boolean)).to.have.length(1);
        expect((ra.ok ? rb : ra).stateVersion).to.equal(7);
        const winner = ra.ok ? 'a' : 'b';
        expect((await store.listOverrides(key)).map((o) => o.name)).to.deep.equal(Array.from({ length: 7 }, (_, i) => `${winner}${i}`));
        expect(await store.listHistory(key, { limit: 10 })).to.have.length(5);
      });

      it('keeps API keys apart', async () => {
        const other = newApiKey();
        await ok([set('a', '1')]);
        await ok([set('a', '2')], { apiKey: other });
        expect((await store.listOverrides(key)).map((o) => o.value)).to.deep.equal(['1']);
        expect((await store.listOverrides(other)).map((o) => o.value)).to.deep.equal(['2']);
        expect(await store.listHistory(other, { limit: 10 })).to.have.length(1);
      });
    });

    describe('strategies', () => {
      it('creates at version 1, bumps the version on every update, records who and when', async () => {
        await ok([put('fast', [v('speed', '9')])], { at: 1_700_000_000_000, by: 'ana@example.com', strategy: { name: 'fast', version: null } });
        expect(await store.getStrategy(key, 'fast')).to.deep.equal({ name: 'fast', vars: [v('speed', '9')], version: 1, updatedAt: 1_700_000_000_000, updatedBy: 'ana@example.com' });
        await ok([put('fast', [v('speed', '10'), v('jump', '2')])], { at: 1_700_000_001_000, by: 'bo', strategy: { name: 'fast', version: 1 } });
        const s = (await store.getStrategy(key, 'fast')) as StrategyRecord;
        expect(s).to.deep.equal({ name: 'fast', vars: [v('speed', '10'), v('jump', '2')], version: 2, updatedAt: 1_700_000_001_000, updatedBy: 'bo' });
        expect(await store.listStrategies(key)).to.deep.equal([s]);
        expect((await store.readState(key)).strategies).to.deep.equal([s]);
      });

      it('refuses a stale strategy version (and a create of one that exists) with the current version', async () => {
        await ok([put('fast', [v('speed', '9')])], { strategy: { name: 'fast', version: null } });
        const again = await change([put('fast', [v('speed', '1')])], { strategy: { name: 'fast', version: null } });
        expect(again).to.deep.equal({ ok: false, stateVersion: 1, strategyVersion: 1 });
        await ok([put('fast', [v('speed', '10')])], { strategy: { name: 'fast', version: 1 } });
        // The state version is fresh; the editor saw version 1 and someone else wrote 2.
        const stale = await change([put('fast', [v('speed', '11')])], { strategy: { name: 'fast', version: 1 } });
        expect(stale).to.deep.equal({ ok: false, stateVersion: 2, strategyVersion: 2 });
        expect((await store.getStrategy(key, 'fast'))?.vars).to.deep.equal([v('speed', '10')]);
        // Deleting: gone, and an update of it is refused with null.
        await ok([{ kind: 'strategy.delete', name: 'fast' }], { strategy: { name: 'fast', version: 2 } });
        expect(await store.getStrategy(key, 'fast')).to.equal(null);
        const gone = await change([put('fast', [v('speed', '1')])], { strategy: { name: 'fast', version: 2 } });
        expect(gone).to.deep.equal({ ok: false, stateVersion: 3, strategyVersion: null });
      });

      it('changes a strategy and the overrides it applies in one step, untouched strategies keep their version', async () => {
        await ok([put('a', [v('x', '1')]), put('b', [v('x', '2')])]);
        await ok([put('b', [v('x', '3')]), set('x', '3', ALL, Date.now(), 'b')]);
        const list = await store.listStrategies(key);
        expect(list.map((s) => [s.name, s.version])).to.deep.equal([
          ['a', 1],
          ['b', 2],
        ]);
        expect((await store.listOverrides(key))[0]?.strategy).to.equal('b');
      });
    });

    describe('history', () => {
      it('pages newest first with `before`', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 7; i++) ids.push((await ok([set('n', String(i))])).id);
        const page1 = await store.listHistory(key, { limit: 3 });
        expect(page1.map((e) => e.id)).to.deep.equal([ids[6], ids[5], ids[4]]);
        const page2 = await store.listHistory(key, { limit: 3, before: page1.at(-1)?.id as string });
        expect(page2.map((e) => e.id)).to.deep.equal([ids[3], ids[2], ids[1]]);
        const page3 = await store.listHistory(key, { limit: 3, before: page2.at(-1)?.id as string });
        expect(page3.map((e) => e.id)).to.deep.equal([ids[0]]);
        expect(await store.listHistory(key, { limit: 3, before: ids[0] as string })).to.deep.equal([]);
        expect(page1[0]?.changes[0]?.after?.value).to.equal('6');
      });

      it('gives increasing ids even when `at` goes back', async () => {
        const a = await ok([set('n', '1')], { at: 2_000_000_000_000 });
        const b = await ok([set('n', '2')], { at: 1_000_000_000_000 });
        const c = await ok([set('n', '3')], { at: 2_000_000_000_000 });
        const parse = (id: string) => id.split('-').map(Number) as [number, number];
        const ids = [a, b, c].map((e) => parse(e.id));
        expect(ids[0]?.[0]).to.equal(2_000_000_000_000);
        for (let i = 1; i < ids.length; i++) {
          const [pm, ps] = ids[i - 1] as [number, number];
          const [m, s] = ids[i] as [number, number];
          expect(m > pm || (m === pm && s > ps), `${ids[i]} after ${ids[i - 1]}`).to.equal(true);
        }
        expect((await store.listHistory(key, { limit: 5 })).map((e) => e.id)).to.deep.equal([c.id, b.id, a.id]);
      });

      it('refuses a malformed cursor or limit with bad_request; an unknown well-formed cursor pages from there', async () => {
        const e = await ok([set('n', '1')], { at: 1_700_000_000_000 });
        for (const before of ['nope', '1-2-3', '', '__proto__', '-1-0'])
          expect(await rejection(store.listHistory(key, { limit: 5, before }))).to.be.instanceOf(ObserverioError).with.property('code', 'bad_request');
        for (const limit of [0, -1, 1.5, Number.NaN])
          expect(await rejection(store.listHistory(key, { limit }))).to.be.instanceOf(ObserverioError).with.property('code', 'bad_request');
        expect(await store.listHistory(key, { limit: 5, before: '9999999999999-0' })).to.deep.equal([e]);
        expect(await store.getHistoryEntry(key, 'nope')).to.equal(null);
        expect(await store.getHistoryEntry(key, '1-0')).to.equal(null);
      });

      it('prunes to maxEntries in the commit, oldest first', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 6; i++) ids.push((await ok([set('n', String(i))], { bounds: { maxEntries: 3, maxAgeMs: BOUNDS.maxAgeMs } })).id);
        expect((await store.listHistory(key, { limit: 10 })).map((e) => e.id)).to.deep.equal([ids[5], ids[4], ids[3]]);
        expect(await store.getHistoryEntry(key, ids[0] as string)).to.equal(null);
        expect(await store.historySince(key, ids[2] as string)).to.equal(null);
      });

      it('prunes by age in the commit: entries older than maxAgeMs before the new one go', async () => {
        const t = 1_700_000_000_000;
        const bounds = { maxEntries: 100, maxAgeMs: 1000 };
        const a = await ok([set('n', '1')], { at: t, bounds });
        const b = await ok([set('n', '2')], { at: t + 600, bounds });
        expect((await store.listHistory(key, { limit: 10 })).map((e) => e.id)).to.deep.equal([b.id, a.id]);
        const c = await ok([set('n', '3')], { at: t + 1200, bounds });
        expect((await store.listHistory(key, { limit: 10 })).map((e) => e.id)).to.deep.equal([c.id, b.id]);
        // pruneHistory does the same on demand, and says how many went.
        expect(await store.pruneHistory(key, bounds, t + 1700)).to.equal(1);
        expect((await store.listHistory(key, { limit: 10 })).map((e) => e.id)).to.deep.equal([c.id]);
        expect(await store.pruneHistory(key, { maxEntries: 1, maxAgeMs: 10_000 }, t + 1700)).to.equal(0);
        expect(await store.pruneHistory(key, bounds, t + 5000)).to.equal(1);
        expect(await store.listHistory(key, { limit: 10 })).to.deep.equal([]);
        // Ids keep increasing after the history emptied.
        const d = await ok([set('n', '4')], { at: t, bounds: BOUNDS });
        expect(Number(d.id.split('-')[0])).to.be.at.least(t + 1200);
        expect(d.id).to.not.equal(c.id);
      });

      it('refuses bounds that are not positive integers', async () => {
        const state = await store.readState(key);
        const { draft } = describeCommit(state, [set('n', '1')], { at: Date.now(), actor: 'x', action: 'override.set', target: null });
        expect(await rejection(store.commit(key, [set('n', '1')], draft, { stateVersion: 0 }, { maxEntries: 0, maxAgeMs: 1 }, 'x'))).to.be.instanceOf(RangeError);
        expect(await rejection(store.pruneHistory(key, { maxEntries: 1, maxAgeMs: -1 }, Date.now()))).to.be.instanceOf(RangeError);
        expect((await store.readState(key)).stateVersion).to.equal(0);
      });

      it('historySince gives the entry and every newer one, newest first; null for an unknown id', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 4; i++) ids.push((await ok([set('n', String(i))])).id);
        expect((await store.historySince(key, ids[1] as string))?.map((e) => e.id)).to.deep.equal([ids[3], ids[2], ids[1]]);
        expect((await store.historySince(key, ids[3] as string))?.map((e) => e.id)).to.deep.equal([ids[3]]);
        expect(await store.historySince(key, '1-0')).to.equal(null);
        expect(await store.historySince(key, 'garbage')).to.equal(null);
      });

      it('supports rollback: the ops history.ts computes from historySince restore the state after the entry', async () => {
        await ok([set('a', '1'), put('s', [v('a', '1')])]);
        const mark = await ok([set('b', '1', { devices: ['d1'] })]);
        const wanted = await store.readState(key);
        await ok([set('a', '2'), clear('b', { devices: ['d1'] }), put('s', [v('a', '2')])]);
        await ok([set('c', '1'), { kind: 'strategy.delete', name: 's' }]);
        const state = await store.readState(key);
        const since = (await store.historySince(key, mark.id)) as HistoryEntry[];
        const ops = rollback(state, since, mark.id);
        await ok(ops, { action: 'rollback' });
        const after = await store.readState(key);
        const view = (s: typeof wanted) => ({ o: s.overrides.map((o) => [o.name, o.value, o.target, o.setAt]).sort(), s: s.strategies.map((x) => [x.name, x.vars]) });
        expect(view(after)).to.deep.equal(view(wanted));
      });

      it('setDelivered records the count on the entry, later commits leave it, unknown ids are ignored', async () => {
        const e = await ok([set('n', '1')]);
        await store.setDelivered(key, e.id, 7);
        expect((await store.getHistoryEntry(key, e.id))?.delivered).to.equal(7);
        await ok([set('n', '2')]);
        const list = await store.listHistory(key, { limit: 5 });
        expect(list.map((x) => x.delivered)).to.deep.equal([0, 7]);
        expect((await store.historySince(key, e.id))?.map((x) => x.delivered)).to.deep.equal([0, 7]);
        await store.setDelivered(key, '1-0', 3);
        await store.setDelivered(key, 'garbage', 3);
        expect(await store.getHistoryEntry(key, '1-0')).to.equal(null);
      });

      it('setDeliveredMany records each count on its entry in one call; unknown and malformed ids are ignored, others still set', async () => {
        const a = await ok([set('m', '1')]);
        const b = await ok([set('m', '2')]);
        const c = await ok([set('m', '3')]);
        await store.setDeliveredMany(key, [
          { id: a.id, delivered: 2 },
          { id: '1-0', delivered: 9 },
          { id: 'garbage', delivered: 9 },
          { id: c.id, delivered: 5 },
        ]);
        expect((await store.listHistory(key, { limit: 3 })).map((x) => [x.id, x.delivered])).to.deep.equal([
          [c.id, 5],
          [b.id, 0],
          [a.id, 2],
        ]);
        expect(await store.getHistoryEntry(key, '1-0')).to.equal(null);
        await store.setDeliveredMany(key, []);
        await store.setDeliveredMany(key, [{ id: b.id, delivered: 1 }]);
        expect((await store.getHistoryEntry(key, b.id))?.delivered).to.equal(1);
        expect((await store.historySince(key, a.id))?.map((x) => x.delivered)).to.deep.equal([5, 1, 2]);
      });
    });

    describe('devices', () => {
      it('lists a touched device online with its address, and keeps labels across touches', async () => {
        const now = Date.now();
        await store.touchDevice(key, { deviceId: 'd1', address: '10.0.0.1:5000', generated: false }, now, TTL);
        await store.setLabels(key, 'd1', { platform: 'android', build: '1.4.2' });
        await store.touchDevice(key, { deviceId: 'd1', address: '10.0.0.2:6000', generated: false }, now + 10, TTL);
        const d = await store.getDevice(key, 'd1', now + 20);
        expect(d).to.deep.equal({ deviceId: 'd1', labels: { platform: 'android', build: '1.4.2' }, online: true, lastSeen: now + 10, lastAddress: '10.0.0.2:6000', generated: false });
        expect(await store.listDevices(key, 60_000, now + 20)).to.deep.equal([d]);
        expect(await store.getDevice(key, 'unknown', now)).to.equal(null);
      });

      it('touches many devices at once like that many touchDevice calls: addresses, presence, labels kept, a device twice the later', async () => {
        const now = Date.now();
        await store.touchDevice(key, { deviceId: 'd1', address: '10.0.0.1:1', generated: false }, now - 5000, TTL);
        await store.setLabels(key, 'd1', { platform: 'ios' });
        await store.touchDevices(
          key,
          [
            { deviceId: 'd1', address: '10.0.0.9:9', generated: false },
            { deviceId: 'g1', address: null, generated: true },
            { deviceId: 'd2', address: '10.0.0.2:2', generated: false },
            { deviceId: 'd2', address: '10.0.0.3:3', generated: false },
          ],
          now,
          TTL,
        );
        expect(await store.getDevice(key, 'd1', now)).to.deep.equal({ deviceId: 'd1', labels: { platform: 'ios' }, online: true, lastSeen: now, lastAddress: '10.0.0.9:9', generated: false });
        expect(await store.getDevice(key, 'g1', now)).to.deep.equal({ deviceId: 'g1', labels: {}, online: true, lastSeen: now, lastAddress: null, generated: true });
        expect((await store.getDevice(key, 'd2', now))?.lastAddress).to.equal('10.0.0.3:3');
        // GT, as touchDevice: an older touch moves neither last seen nor presence back.
        await store.touchDevices(key, [{ deviceId: 'd1', address: '10.0.0.8:8', generated: false }], now - 60_000, 1);
        const d1 = await store.getDevice(key, 'd1', now + 1);
        expect(d1?.lastSeen).to.equal(now);
        expect(d1?.online).to.equal(true);
        await store.touchDevices(key, [], now, TTL);
        // More devices than one Redis command carries (1000), all recorded.
        const many = Array.from({ length: 1200 }, (_, i) => ({ deviceId: `m${i}`, address: null, generated: false }));
        await store.touchDevices(key, many, now, TTL);
        const listed = await store.listDevices(key, 60_000, now);
        expect(listed.filter((d) => d.deviceId.startsWith('m') && d.online)).to.have.length(1200);
        expect(await rejection(store.touchDevices(key, many, now, 0))).to.be.instanceOf(RangeError);
      });

      it('replaces labels as a whole', async () => {
        const now = Date.now();
        await store.touchDevice(key, { deviceId: 'd1', address: null, generated: true }, now, TTL);
        await store.setLabels(key, 'd1', { platform: 'android', build: '1' });
        await store.setLabels(key, 'd1', { engine: 'unity' });
        expect((await store.getDevice(key, 'd1', now))?.labels).to.deep.equal({ engine: 'unity' });
        await store.setLabels(key, 'd1', {});
        const d = await store.getDevice(key, 'd1', now);
        expect(d?.labels).to.deep.equal({});
        expect(d?.generated).to.equal(true);
        expect(d?.lastAddress).to.equal(null);
      });

      it('lists the offline devices alone, with their labels, as listDevices has them offline', async () => {
        const now = Date.now();
        await store.touchDevice(key, { deviceId: 'a', address: null, generated: false }, now - 5000, TTL);
        await store.touchDevice(key, { deviceId: 'b', address: null, generated: false }, now - 1000, TTL);
        await store.touchDevice(key, { deviceId: 'c', address: null, generated: false }, now - 3000, 1000);
        await store.touchDevice(key, { deviceId: 'old', address: null, generated: false }, now - 50_000, 1000);
        await store.setLabels(key, 'b', { platform: 'ios' });
        await store.markOffline(key, 'b', now - 500);
        const offline = async (rememberMs: number, at: number) => (await store.listOfflineDevices(key, rememberMs, at)).sort((x, y) => x.deviceId.localeCompare(y.deviceId));
        expect(await offline(60_000, now)).to.deep.equal([
          { deviceId: 'b', labels: { platform: 'ios' } },
          { deviceId: 'c', labels: {} },
          { deviceId: 'old', labels: {} },
        ]);
        // Within rememberMs only, as listDevices; the same devices it lists offline.
        expect(await offline(10_000, now)).to.deep.equal([
          { deviceId: 'b', labels: { platform: 'ios' } },
          { deviceId: 'c', labels: {} },
        ]);
        const listed = (await store.listDevices(key, 10_000, now)).filter((d) => !d.online).map((d) => d.deviceId).sort();
        expect((await offline(10_000, now)).map((d) => d.deviceId)).to.deep.equal(listed);
        // Once every presence lapses, every remembered device is offline.
        expect((await offline(3_600_000, now + TTL + 1)).map((d) => d.deviceId)).to.deep.equal(['a', 'b', 'c', 'old']);
        expect(await store.listOfflineDevices('NoSuchKey00001', 60_000, now)).to.deep.equal([]);
      });

      it('lists the devices listDevices lists with their labels alone (listDeviceViews), whatever their order', async () => {
        const now = Date.now();
        await store.touchDevice(key, { deviceId: 'a', address: '10.0.0.1:1', generated: false }, now - 5000, TTL);
        await store.touchDevice(key, { deviceId: 'b', address: null, generated: true }, now - 1000, TTL);
        await store.touchDevice(key, { deviceId: 'c', address: null, generated: false }, now - 3000, 1000);
        await store.touchDevice(key, { deviceId: 'old', address: null, generated: false }, now - 50_000, 1000);
        // Seen long ago, online still: listed whatever rememberMs says.
        await store.touchDevice(key, { deviceId: 'live', address: null, generated: false }, now - 40_000, 3_600_000);
        await store.setLabels(key, 'b', { platform: 'ios' });
        await store.setLabels(key, 'live', { build: '7', platform: 'android' });
        await store.markOffline(key, 'b', now - 500);
        const views = async (rememberMs: number, at: number) => (await store.listDeviceViews(key, rememberMs, at)).sort((x, y) => x.deviceId.localeCompare(y.deviceId));
        const listed = async (rememberMs: number, at: number) =>
          (await store.listDevices(key, rememberMs, at)).map((d) => ({ deviceId: d.deviceId, labels: d.labels })).sort((x, y) => x.deviceId.localeCompare(y.deviceId));
        expect(await views(10_000, now)).to.deep.equal([
          { deviceId: 'a', labels: {} },
          { deviceId: 'b', labels: { platform: 'ios' } },
          { deviceId: 'c', labels: {} },
          { deviceId: 'live', labels: { build: '7', platform: 'android' } },
        ]);
        for (const [rememberMs, at] of [
          [10_000, now],
          [60_000, now],
          [1, now],
          [3_600_000, now + TTL + 1],
          [1, now + 7_200_000],
        ] as const)
          expect(await views(rememberMs, at), `${rememberMs} ${at - now}`).to.deep.equal(await listed(rememberMs, at));
        expect(await store.listDeviceViews('NoSuchKey00001', 60_000, now)).to.deep.equal([]);
      });

      it('offline when marked, or when its presence lapses; remembered for rememberMs, newest first', async () => {
        const now = Date.now();
        await store.touchDevice(key, { deviceId: 'a', address: null, generated: false }, now - 5000, TTL);
        await store.touchDevice(key, { deviceId: 'b', address: null, generated: false }, now - 1000, TTL);
        await store.touchDevice(key, { deviceId: 'c', address: null, generated: false }, now - 3000, 1000);
        await store.markOffline(key, 'b', now - 500);
        const list = await store.listDevices(key, 60_000, now);
        expect(list.map((d) => [d.deviceId, d.online, d.lastSeen])).to.deep.equal([
          ['b', false, now - 500],
          ['c', false, now - 3000],
          ['a', true, now - 5000],
        ]);
        // Remembered only within rememberMs; online ones always.
        expect((await store.listDevices(key, 2000, now)).map((d) => d.deviceId)).to.deep.equal(['b', 'a']);
        // Presence lapses: later, nothing is online.
        expect((await store.listDevices(key, 3_600_000, now + TTL + 1)).map((d) => d.online)).to.deep.equal([false, false, false]);
        // A heartbeat brings them back online and moves last seen.
        await store.heartbeat(key, ['a', 'c'], now + 100, TTL);
        const after = await store.listDevices(key, 2000, now + 200);
        expect(after.map((d) => [d.deviceId, d.online, d.lastSeen])).to.deep.equal([
          ['a', true, now + 100],
          ['c', true, now + 100],
          ['b', false, now - 500],
        ]);
        // markOffline of an unknown device does not make one up.
        await store.markOffline(key, 'ghost', now);
        expect(await store.getDevice(key, 'ghost', now)).to.equal(null);
      });

      it('does not move last seen backwards', async () => {
        const now = Date.now();
        await store.touchDevice(key, { deviceId: 'd', address: null, generated: false }, now, TTL);
        await store.heartbeat(key, ['d'], now - 10_000, TTL);
        expect((await store.getDevice(key, 'd', now))?.lastSeen).to.equal(now);
      });

      it('forgets offline devices not seen since `before`, with their reported values and last-sent', async () => {
        const now = Date.now();
        await store.touchDevice(key, { deviceId: 'old', address: null, generated: false }, now - 100_000, 1000);
        await store.touchDevice(key, { deviceId: 'stale-online', address: null, generated: false }, now - 100_000, 3_600_000);
        await store.touchDevice(key, { deviceId: 'recent', address: null, generated: false }, now - 1000, 1000);
        await store.setLabels(key, 'old', { platform: 'ios' });
        await store.setReported(key, 'old', [v('speed', '1')]);
        await store.setLastSent(key, 'old', [v('speed', '2')], true);
        expect(await store.forgetDevices(key, now - 50_000)).to.equal(1);
        expect(await store.getDevice(key, 'old', now)).to.equal(null);
        expect(await store.getReported(key, 'old')).to.deep.equal([]);
        expect(await store.getLastSent(key, 'old')).to.deep.equal(new Map());
        expect((await store.listDevices(key, 3_600_000, now)).map((d) => d.deviceId).sort()).to.deep.equal(['recent', 'stale-online']);
        expect(await store.forgetDevices(key, now - 50_000)).to.equal(0);
        // Seen again later: a fresh record, no labels left over.
        await store.touchDevice(key, { deviceId: 'old', address: null, generated: false }, now, TTL);
        expect((await store.getDevice(key, 'old', now))?.labels).to.deep.equal({});
      });

      it('refuses a presence ttl that is not positive', async () => {
        expect(await rejection(store.touchDevice(key, { deviceId: 'd', address: null, generated: false }, Date.now(), 0))).to.be.instanceOf(RangeError);
        expect(await rejection(store.heartbeat(key, ['d'], Date.now(), -1))).to.be.instanceOf(RangeError);
      });
    });

    describe('reported and last-sent, per device', () => {
      it('keeps each device its own reported values, replaced as a whole, in order', async () => {
        await store.setReported(key, 'd1', [v('speed', '1'), v('jump', '2')]);
        await store.setReported(key, 'd2', [v('speed', '9')]);
        expect(await store.getReported(key, 'd1')).to.deep.equal([v('speed', '1'), v('jump', '2')]);
        expect(await store.getReported(key, 'd2')).to.deep.equal([v('speed', '9')]);
        await store.setReported(key, 'd1', [v('jump', '3'), v('speed', '1'), v('jump', '4')]);
        // A name twice: the later value, in the first one's place.
        expect(await store.getReported(key, 'd1')).to.deep.equal([v('jump', '4'), v('speed', '1')]);
        expect(await store.getReported(key, 'd2')).to.deep.equal([v('speed', '9')]);
        expect(await store.getReported(key, 'nobody')).to.deep.equal([]);
        // Reports are not the key's shared variables.
        expect(await store.getVars(key)).to.deep.equal([]);
        await store.setReported(key, 'd1', []);
        expect(await store.getReported(key, 'd1')).to.deep.equal([]);
      });

      it('replaces or merges last-sent, and forgets names', async () => {
        await store.setLastSent(key, 'd1', [v('a', '1'), v('b', '1')], true);
        await store.setLastSent(key, 'd2', [v('a', '9')], true);
        await store.setLastSent(key, 'd1', [v('b', '2'), v('c', '2')], false);
        expect(await store.getLastSent(key, 'd1')).to.deep.equal(new Map([['a', v('a', '1')], ['b', v('b', '2')], ['c', v('c', '2')]]));
        await store.setLastSent(key, 'd1', [v('c', '3')], true);
        expect(await store.getLastSent(key, 'd1')).to.deep.equal(new Map([['c', v('c', '3')]]));
        await store.forgetLastSent(key, 'd1', ['c', 'never-sent']);
        expect(await store.getLastSent(key, 'd1')).to.deep.equal(new Map());
        expect(await store.getLastSent(key, 'd2')).to.deep.equal(new Map([['a', v('a', '9')]]));
        // Replace with nothing: what a verify with no overrides in effect leaves.
        await store.setLastSent(key, 'd2', [], true);
        expect(await store.getLastSent(key, 'd2')).to.deep.equal(new Map());
      });

      it('reads a long reported list again after each replacement, and a caller changing what it got changes nothing', async () => {
        const list = (value: string) => Array.from({ length: 300 }, (_, i) => v(`var${i}`, value));
        await store.setReported(key, 'd1', list('a'));
        expect(await store.getReported(key, 'd1')).to.deep.equal(list('a'));
        const got = await store.getReported(key, 'd1');
        got.pop();
        got.push(v('intruder', '1'));
        expect(await store.getReported(key, 'd1')).to.deep.equal(list('a'));
        expect((await store.getSentAndReported(key, ['d1']))[0]?.reported).to.deep.equal(list('a'));
        // Same length, other values: read as they are now.
        await store.setReported(key, 'd1', list('b'));
        expect(await store.getReported(key, 'd1')).to.deep.equal(list('b'));
        expect((await store.getSentAndReported(key, ['d1']))[0]?.reported).to.deep.equal(list('b'));
        await store.setReported(key, 'd1', []);
        expect(await store.getReported(key, 'd1')).to.deep.equal([]);
      });

      it('reads last-sent and reported of many devices at once, in the order asked, unknown devices empty', async () => {
        await store.setLastSent(key, 'd1', [v('a', '1'), v('b', '1')], true);
        await store.setReported(key, 'd1', [v('z', '9'), v('a', '0')]);
        await store.setReported(key, 'd3', [v('a', '3')]);
        await store.setLastSent(key, 'other-key-device', [v('a', '7')], true);
        const got = await store.getSentAndReported(key, ['d3', 'nobody', 'd1']);
        expect(got).to.deep.equal([
          { lastSent: new Map(), reported: [v('a', '3')] },
          { lastSent: new Map(), reported: [] },
          { lastSent: new Map([['a', v('a', '1')], ['b', v('b', '1')]]), reported: [v('z', '9'), v('a', '0')] },
        ]);
        expect(await store.getSentAndReported(key, [])).to.deep.equal([]);
        // More devices than one Redis command carries (1000) come back whole and in order.
        const many = Array.from({ length: 1500 }, (_, i) => `m${i}`);
        await store.addLastSent(key, many.map((deviceId, i) => ({ deviceId, vars: [v('n', String(i))] })));
        const all = await store.getSentAndReported(key, many);
        expect(all.map((x) => x.lastSent.get('n')?.value)).to.deep.equal(many.map((_, i) => String(i)));
      });

      it('reads only the named variables of each last-sent when asked, in the order asked, reported whole', async () => {
        await store.setLastSent(key, 'd1', [v('a', '1'), v('b', '1'), v('c', '1')], true);
        await store.setReported(key, 'd1', [v('z', '9')]);
        await store.setLastSent(key, 'd2', [v('b', '2')], true);
        const got = await store.getSentAndReported(key, ['d2', 'nobody', 'd1'], ['c', 'a', 'missing', 'a']);
        expect(got).to.deep.equal([
          { lastSent: new Map(), reported: [] },
          { lastSent: new Map(), reported: [] },
          { lastSent: new Map([['c', v('c', '1')], ['a', v('a', '1')]]), reported: [v('z', '9')] },
        ]);
        expect(await store.getSentAndReported(key, ['d1'], [])).to.deep.equal([{ lastSent: new Map(), reported: [v('z', '9')] }]);
        // A name that is no variable's field, and names that look like hash tags or patterns.
        expect((await store.getSentAndReported(key, ['d1'], ['*', '{x}', 'b\u0000']))[0]?.lastSent.size).to.equal(0);
      });

      it('adds to the last-sent of many devices at once: merged like setLastSent without replace', async () => {
        await store.setLastSent(key, 'd1', [v('a', '1'), v('b', '1')], true);
        await store.addLastSent(key, [
          { deviceId: 'd1', vars: [v('b', '2'), v('c', '2', 'integer')] },
          { deviceId: 'd2', vars: [v('a', '5'), v('a', '6')] },
          { deviceId: 'd3', vars: [] },
        ]);
        expect(await store.getLastSent(key, 'd1')).to.deep.equal(new Map([['a', v('a', '1')], ['b', v('b', '2')], ['c', v('c', '2', 'integer')]]));
        expect(await store.getLastSent(key, 'd2')).to.deep.equal(new Map([['a', v('a', '6')]]));
        expect(await store.getLastSent(key, 'd3')).to.deep.equal(new Map());
        await store.addLastSent(key, []);
        // Only what the Var carries is kept, as setLastSent keeps it.
        await store.addLastSent(key, [{ deviceId: 'd3', vars: [{ ...v('x', '1'), extra: 'no' } as Var] }]);
        expect(await store.getLastSent(key, 'd3')).to.deep.equal(new Map([['x', v('x', '1')]]));
      });
      it('replaces the last-sent of many devices at once, like setLastSent with replace: a device twice the later, empty clears', async () => {
        await store.setLastSent(key, 'd1', [v('a', '1'), v('b', '1')], true);
        await store.setLastSent(key, 'd2', [v('a', '1')], true);
        await store.replaceLastSent(key, [
          { deviceId: 'd1', vars: [v('c', '2', 'integer'), v('c', '3', 'integer')] },
          { deviceId: 'd2', vars: [] },
          { deviceId: 'd3', vars: [v('x', '1')] },
          { deviceId: 'd3', vars: [v('y', '2')] },
        ]);
        expect(await store.getLastSent(key, 'd1')).to.deep.equal(new Map([['c', v('c', '3', 'integer')]]));
        expect(await store.getLastSent(key, 'd2')).to.deep.equal(new Map());
        expect(await store.getLastSent(key, 'd3')).to.deep.equal(new Map([['y', v('y', '2')]]));
        await store.replaceLastSent(key, []);
        const many = Array.from({ length: 1200 }, (_, i) => `m${i}`);
        await store.replaceLastSent(key, many.map((deviceId, i) => ({ deviceId, vars: [v('n', String(i))] })));
        expect((await store.getSentAndReported(key, many)).map((x) => x.lastSent.get('n')?.value)).to.deep.equal(many.map((_, i) => String(i)));
      });
    });

    describe('hostile names', () => {
      const ids = ['__proto__', 'constructor', 'dev:1', '{tag}', 'a}{b', 'ünïcødé-☃', 'x'.repeat(200)];
      const names = ['__proto__', 'constructor', 'hasOwnProperty', 'a:b{c}', ':type', 'x:value', 'ünï ☃', 'toString'];

      it('keeps devices, reports and last-sent with such ids and variable names apart', async () => {
        const now = Date.now();
        for (const [i, id] of ids.entries()) {
          await store.touchDevice(key, { deviceId: id, address: `addr-${i}`, generated: false }, now + i, TTL);
          await store.setLabels(key, id, { n: String(i) });
          await store.setReported(key, id, names.map((n) => v(n, `${id}/${n}`)));
          await store.setLastSent(key, id, names.map((n) => v(n, `sent ${id}/${n}`)), true);
        }
        const list = await store.listDevices(key, 60_000, now + 100);
        expect(list.map((d) => d.deviceId)).to.deep.equal([...ids].reverse());
        for (const [i, id] of ids.entries()) {
          expect((await store.getDevice(key, id, now))?.lastAddress).to.equal(`addr-${i}`);
          expect((await store.getDevice(key, id, now))?.labels).to.deep.equal({ n: String(i) });
          expect(await store.getReported(key, id)).to.deep.equal(names.map((n) => v(n, `${id}/${n}`)));
          const sent = await store.getLastSent(key, id);
          expect([...sent.keys()].sort()).to.deep.equal([...names].sort());
          for (const n of names) expect(sent.get(n)).to.deep.equal(v(n, `sent ${id}/${n}`));
        }
        await store.forgetLastSent(key, '__proto__', ['__proto__']);
        expect((await store.getLastSent(key, '__proto__')).has('__proto__')).to.equal(false);
        expect((await store.getLastSent(key, 'constructor')).has('__proto__')).to.equal(true);
        expect(({} as Record<string, unknown>).n).to.equal(undefined);
      });

      it('keeps overrides and strategies with such names and device targets', async () => {
        const ops: Op[] = names.map((n, i) => set(n, String(i), { devices: [ids[i % ids.length] as string] }));
        ops.push(put('__proto__', [v('__proto__', '1')]), put('constructor', [v('a:b{c}', '2')]));
        await ok(ops);
        const s = await store.readState(key);
        expect(s.overrides.map((o) => [o.name, o.value, o.target])).to.deep.equal(names.map((n, i) => [n, String(i), { devices: [ids[i % ids.length]] }]));
        expect(s.strategies.map((x) => x.name)).to.deep.equal(['__proto__', 'constructor']);
        expect((await store.getStrategy(key, '__proto__'))?.vars).to.deep.equal([v('__proto__', '1')]);
        expect(await store.getStrategy(key, 'toString')).to.equal(null);
        await ok([clear('__proto__', { devices: ['__proto__'] })]);
        expect((await store.listOverrides(key)).map((o) => o.name)).to.not.include('__proto__');
      });
    });

    describe('big lists', () => {
      it('keeps 3000 devices through one heartbeat and lists them all', async () => {
        const now = Date.now();
        const many = Array.from({ length: 3000 }, (_, i) => `dev-${i}`);
        await store.heartbeat(key, many, now, TTL);
        const list = await store.listDevices(key, 60_000, now);
        expect(list).to.have.length(3000);
        expect(list.every((d) => d.online && d.lastSeen === now)).to.equal(true);
        expect(list.slice(0, 3).map((d) => d.deviceId)).to.deep.equal(['dev-0', 'dev-1', 'dev-10']);
      });

      it('keeps an override for a 10,000-device target and 400 reported variables in order', async () => {
        const devices = Array.from({ length: 10_000 }, (_, i) => `device-${String(i).padStart(5, '0')}`);
        await ok([set('speed', '5', { devices })]);
        const [o] = await store.listOverrides(key);
        expect(o?.target).to.deep.equal({ devices });
        const vars = Array.from({ length: 400 }, (_, i) => v(`var-${399 - i}`, 'x'.repeat(100)));
        await store.setReported(key, 'd', vars);
        expect(await store.getReported(key, 'd')).to.deep.equal(vars);
        await ok([clear('speed', { devices })]);
        expect(await store.listOverrides(key)).to.deep.equal([]);
      });
    });
  });
}
