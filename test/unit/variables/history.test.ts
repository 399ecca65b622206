import { expect } from 'chai';
import type { Var } from '../../../src/model.js';
import { applyStrategyTo, clearOverride, createStrategy, deleteStrategy, revertEntry, rollbackTo, setOverride, updateStrategy, type Action } from '../../../src/variables/actions.js';
import {
  applyOps,
  checkHistoryBounds,
  commit,
  EMPTY_STATE,
  prune,
  revert,
  rollback,
  type HistoryEntry,
  type VariablesState,
} from '../../../src/variables/history.js';
import { inEffectVars, makeOverride, overrideKey } from '../../../src/variables/overrides.js';
import { ALL, parseTarget, type DeviceView } from '../../../src/variables/target.js';
import { errorOf } from './helpers.js';

const v = (name: string, value: string, type = 'integer'): Var => ({ name, type, value });
const phone: DeviceView = { deviceId: 'p1', labels: { platform: 'android' } };
const android = parseTarget({ labels: 'platform=android' });

/** A key's state and history as a store keeps them: ids in append order, listed newest first. */
class Key {
  state: VariablesState = EMPTY_STATE;
  entries: HistoryEntry[] = [];
  private seq = 0;
  private clock = 1000;
  who(actor = 'ann@x.io') {
    return { actor, at: ++this.clock };
  }
  run(a: Action): HistoryEntry {
    const { state, draft } = commit(this.state, a.ops, a.meta);
    this.state = state;
    const entry: HistoryEntry = { ...draft, id: `${draft.at}-${this.seq++}` };
    this.entries.unshift(entry);
    return entry;
  }
  values(): Record<string, string> {
    return Object.fromEntries(inEffectVars(phone, this.state.overrides).map((x) => [x.name, x.value]));
  }
}

describe('variables/history', () => {
  describe('applyOps: the overrides as a Map by overrideKey orders them, whatever the number of operations', () => {
    it('for random sets and clears on frozen and fresh overrides, with targets of every kind', () => {
      let seed = 7;
      const rnd = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      const targets = [ALL, parseTarget({ devices: ['a', 'b'] }), parseTarget({ devices: ['b', 'a'] }), parseTarget({ labels: 'os=ios' }), parseTarget({ devices: ['c'] })];
      const randomOp = (i: number) =>
        rnd(3) === 0
          ? { kind: 'override.clear' as const, name: `v${rnd(6)}`, target: targets[rnd(targets.length)] ?? ALL }
          : { kind: 'override.set' as const, override: makeOverride({ name: `v${rnd(6)}`, type: 'string', value: String(i) }, targets[rnd(targets.length)] ?? ALL, 'x', i) };
      for (let round = 0; round < 300; round++) {
        let state = { overrides: [] as ReturnType<typeof makeOverride>[], strategies: [] };
        for (let i = 0; i < rnd(12); i++) state = { ...state, overrides: [...applyOps(state, [randomOp(i)]).overrides] };
        if (round % 2 === 0) state.overrides.forEach((o) => Object.freeze(Object.freeze(o).target));
        const ops = Array.from({ length: 1 + rnd(8) }, (_, i) => randomOp(100 + i));
        // Clears of overrides that do not exist change nothing.
        const padding = Array.from({ length: 9 }, (_, i) => ({ kind: 'override.clear' as const, name: `none${i}`, target: ALL }));
        const few = applyOps(state, ops);
        const many = applyOps(state, [...ops, ...padding]);
        const keyed = new Map(state.overrides.map((o) => [overrideKey(o.name, o.target), o]));
        for (const op of ops) {
          if (op.kind === 'override.set') keyed.set(overrideKey(op.override.name, op.override.target), op.override);
          else keyed.delete(overrideKey(op.name, op.target));
        }
        expect(few.overrides, `round ${round}`).to.deep.equal([...keyed.values()]);
        expect(few.overrides, `round ${round}`).to.deep.equal(many.overrides);
        expect(commit(state, ops, { at: 1, actor: 'x', action: 'override.set', target: null }).draft.changes).to.deep.equal(commit(state, [...ops, ...padding], { at: 1, actor: 'x', action: 'override.set', target: null }).draft.changes);
      }
    });
  });

  describe('commit', () => {
    it('records each variable and target before and after', () => {
      const k = new Key();
      const e1 = k.run(setOverride(k.state, 'speed', 3, undefined, ALL, 'integer', k.who()));
      expect(e1).to.deep.include({ action: 'override.set', actor: 'ann@x.io', target: { all: true }, delivered: 0, strategies: [] });
      expect(e1.changes).to.deep.equal([{ name: 'speed', target: { all: true }, before: null, after: { value: '3', type: 'integer', setBy: 'ann@x.io', setAt: e1.at } }]);
      const e2 = k.run(setOverride(k.state, 'speed', '4', undefined, ALL, undefined, k.who('bob')));
      expect(e2.changes[0]?.before?.value).to.equal('3');
      expect(e2.changes[0]?.after).to.deep.include({ value: '4', type: 'integer', setBy: 'bob' });
    });
    it('setting the same target twice replaces the override, whatever the device order', () => {
      const k = new Key();
      k.run(setOverride(k.state, 'speed', 3, undefined, parseTarget({ devices: ['b', 'a'] }), undefined, k.who()));
      k.run(setOverride(k.state, 'speed', 4, undefined, parseTarget({ devices: ['a', 'b', 'a'] }), undefined, k.who()));
      expect(k.state.overrides).to.have.length(1);
      expect(k.state.overrides[0]?.value).to.equal('4');
    });
    it('leaves out what ends as it began', () => {
      const o = makeOverride(v('a', '1'), ALL, 'x', 1);
      const { draft } = commit(applyOps(EMPTY_STATE, [{ kind: 'override.set', override: o }]), [{ kind: 'override.set', override: o }], { at: 2, actor: 'x', action: 'override.set', target: ALL });
      expect(draft.changes).to.deep.equal([]);
      const twice = commit(EMPTY_STATE, [{ kind: 'override.set', override: o }, { kind: 'override.clear', name: 'a', target: ALL }], { at: 2, actor: 'x', action: 'override.set', target: ALL });
      expect(twice.draft.changes).to.deep.equal([]);
    });
    it('records strategies created, edited and deleted', () => {
      const k = new Key();
      const s1 = { name: 'fast', vars: [v('a', '1')] };
      const c = k.run(createStrategy(k.state, s1, k.who()));
      expect(c).to.deep.include({ action: 'strategy.create', target: null, changes: [], strategies: [{ name: 'fast', before: null, after: [v('a', '1')] }] });
      const u = k.run(updateStrategy(k.state, { name: 'fast', vars: [v('a', '2')] }, k.who()));
      expect(u.strategies).to.deep.equal([{ name: 'fast', before: [v('a', '1')], after: [v('a', '2')] }]);
      const d = k.run(deleteStrategy(k.state, 'fast', k.who()));
      expect(d.strategies).to.deep.equal([{ name: 'fast', before: [v('a', '2')], after: null }]);
      expect(k.state.strategies).to.deep.equal([]);
    });
  });

  describe('actions', () => {
    it('clearOverride is not_found for a target without an override of that variable', () => {
      const k = new Key();
      k.run(setOverride(k.state, 'speed', 3, undefined, ALL, undefined, k.who()));
      expect(errorOf(() => clearOverride(k.state, 'speed', android, k.who()), 'not_found')).to.include('no override for that target');
      expect(errorOf(() => clearOverride(k.state, 'nope', ALL, k.who()), 'not_found')).to.include('"nope"');
    });
    it('setOverride keeps the type of an override already set', () => {
      const k = new Key();
      k.run(setOverride(k.state, 'g', 1.5, undefined, ALL, undefined, k.who()));
      const a = setOverride(k.state, 'g', '2', undefined, android, 'string', k.who());
      expect(a.ops[0]).to.deep.nested.include({ 'override.type': 'float' });
      expect(errorOf(() => setOverride(k.state, 'g', 'x', undefined, android, undefined, k.who()))).to.include('variable g');
    });
    it('strategy actions check existence', () => {
      const k = new Key();
      k.run(createStrategy(k.state, { name: 'fast', vars: [v('a', '1')] }, k.who()));
      expect(errorOf(() => createStrategy(k.state, { name: 'fast', vars: [v('a', '1')] }, k.who()))).to.include('already exists');
      expect(errorOf(() => updateStrategy(k.state, { name: 'slow', vars: [v('a', '1')] }, k.who()), 'not_found')).to.include('"slow"');
      expect(errorOf(() => deleteStrategy(k.state, 'slow', k.who()), 'not_found')).to.include('"slow"');
      expect(errorOf(() => applyStrategyTo(k.state, 'slow', ALL, k.who()), 'not_found')).to.include('"slow"');
    });
  });

  describe('revert', () => {
    it('undoes an entry as a new entry, restoring the exact former override', () => {
      const k = new Key();
      const e1 = k.run(setOverride(k.state, 'speed', 3, undefined, ALL, undefined, k.who()));
      const e2 = k.run(setOverride(k.state, 'speed', 4, undefined, ALL, undefined, k.who('bob')));
      const r = revertEntry(k.state, e2, k.who('cy'));
      expect(r.conflicts).to.deep.equal([]);
      const e3 = k.run(r);
      expect(e3).to.deep.include({ action: 'revert', revertOf: e2.id, actor: 'cy', target: { all: true } });
      expect(k.state.overrides).to.deep.equal([makeOverride(v('speed', '3'), ALL, 'ann@x.io', e1.at)]);
      expect(e3.changes[0]?.before?.value).to.equal('4');
      expect(e3.changes[0]?.after?.value).to.equal('3');
    });
    it('reverting a set that created the override clears it; reverting a clear brings it back', () => {
      const k = new Key();
      const e1 = k.run(setOverride(k.state, 'speed', 3, undefined, android, undefined, k.who()));
      const e2 = k.run(clearOverride(k.state, 'speed', android, k.who()));
      k.run(revertEntry(k.state, e2, k.who()));
      expect(k.values()).to.deep.equal({ speed: '3' });
      k.run(setOverride(k.state, 'lives', 1, undefined, ALL, undefined, k.who()));
      // e1's override is back exactly as e1 left it, so reverting e1 now clears it.
      expect(revert(e1, k.state).conflicts).to.deep.equal([]);
      k.run(revertEntry(k.state, e1, k.who()));
      expect(k.values()).to.deep.equal({ lives: '1' });
    });
    it('does not clobber a later edit of the same variable: a conflict instead, unless forced', () => {
      const k = new Key();
      const e1 = k.run(setOverride(k.state, 'speed', 3, undefined, ALL, undefined, k.who()));
      k.run(setOverride(k.state, 'lives', 2, undefined, ALL, undefined, k.who()));
      const later = k.run(setOverride(k.state, 'speed', 5, undefined, ALL, undefined, k.who()));
      const r = revert(e1, k.state);
      expect(r.ops).to.deep.equal([]);
      expect(r.conflicts).to.have.length(1);
      expect(r.conflicts[0]).to.deep.include({ kind: 'override', name: 'speed', expected: e1.changes[0]?.after, current: later.changes[0]?.after });
      const forced = revert(e1, k.state, { force: true });
      expect(forced.ops).to.deep.equal([{ kind: 'override.clear', name: 'speed', target: { all: true } }]);
    });
    it('reverts a strategy apply, and a strategy edit, and reports a strategy conflict', () => {
      const k = new Key();
      k.run(createStrategy(k.state, { name: 'fast', vars: [v('a', '1'), v('b', '2')] }, k.who()));
      k.run(setOverride(k.state, 'a', 9, undefined, android, undefined, k.who()));
      const apply = k.run(applyStrategyTo(k.state, 'fast', android, k.who()));
      expect(apply.changes.map((c) => c.name)).to.deep.equal(['a', 'b']);
      k.run(revertEntry(k.state, apply, k.who()));
      expect(k.values()).to.deep.equal({ a: '9' });
      const edit = k.run(updateStrategy(k.state, { name: 'fast', vars: [v('a', '5')] }, k.who()));
      k.run(revertEntry(k.state, edit, k.who()));
      expect(k.state.strategies).to.deep.equal([{ name: 'fast', vars: [v('a', '1'), v('b', '2')] }]);
      k.run(updateStrategy(k.state, { name: 'fast', vars: [v('a', '7')] }, k.who()));
      expect(revert(edit, k.state).conflicts).to.deep.include({ kind: 'strategy', name: 'fast', expected: [v('a', '5')], current: [v('a', '7')] });
    });
  });

  describe('rollback', () => {
    function scenario(): { k: Key; ids: string[]; snapshots: Map<string, VariablesState> } {
      const k = new Key();
      const ids: string[] = [];
      const snapshots = new Map<string, VariablesState>();
      const step = (a: Action): void => {
        const e = k.run(a);
        ids.push(e.id);
        snapshots.set(e.id, k.state);
      };
      step(setOverride(k.state, 'speed', 1, undefined, ALL, undefined, k.who()));
      step(createStrategy(k.state, { name: 'fast', vars: [v('speed', '3'), v('spawn', '400')] }, k.who()));
      step(applyStrategyTo(k.state, 'fast', android, k.who()));
      step(setOverride(k.state, 'spawn', 500, undefined, { devices: ['p1'] }, undefined, k.who()));
      step(revertEntry(k.state, k.entries[0] as HistoryEntry, k.who()));
      step(clearOverride(k.state, 'speed', ALL, k.who()));
      step(updateStrategy(k.state, { name: 'fast', vars: [v('speed', '4')] }, k.who()));
      step(deleteStrategy(k.state, 'fast', k.who()));
      return { k, ids, snapshots };
    }
    const normal = (s: VariablesState) => ({
      overrides: [...s.overrides].sort((a, b) => (`${a.name}${JSON.stringify(a.target)}` < `${b.name}${JSON.stringify(b.target)}` ? -1 : 1)),
      strategies: [...s.strategies].sort((a, b) => (a.name < b.name ? -1 : 1)),
    });

    it('brings overrides and strategies back to the state right after any entry, across reverts', () => {
      const { ids, snapshots } = scenario();
      for (const id of ids) {
        const { k } = scenario();
        const e = k.run(rollbackTo(k.state, k.entries, id, k.who()));
        expect(normal(k.state), `rollback to ${id}`).to.deep.equal(normal(snapshots.get(id) as VariablesState));
        expect(e).to.deep.include({ action: 'rollback', rollbackTo: id, target: null });
      }
    });
    it('rolling back to the newest entry does nothing', () => {
      const { k } = scenario();
      expect(rollback(k.state, k.entries, (k.entries[0] as HistoryEntry).id)).to.deep.equal([]);
    });
    it('rolls back across an earlier rollback, and the rollback itself can be reverted', () => {
      const { k, ids, snapshots } = scenario();
      k.run(rollbackTo(k.state, k.entries, ids[2] as string, k.who()));
      const undoTo = k.entries[0] as HistoryEntry;
      k.run(setOverride(k.state, 'lives', 9, undefined, ALL, undefined, k.who()));
      k.run(rollbackTo(k.state, k.entries, ids[5] as string, k.who()));
      expect(normal(k.state)).to.deep.equal(normal(snapshots.get(ids[5] as string) as VariablesState));
      k.run(rollbackTo(k.state, k.entries, undoTo.id, k.who()));
      expect(normal(k.state)).to.deep.equal(normal(snapshots.get(ids[2] as string) as VariablesState));
      const back = revertEntry(k.state, k.entries[0] as HistoryEntry, k.who());
      expect(back.conflicts).to.deep.equal([]);
      k.run(back);
      expect(normal(k.state)).to.deep.equal(normal(snapshots.get(ids[5] as string) as VariablesState));
    });
    it('still works after the oldest entries were pruned, and refuses a pruned id', () => {
      const { k, ids, snapshots } = scenario();
      const kept = prune(k.entries, { maxEntries: 4, maxAgeMs: 1e9 }, 2000).kept;
      const id = ids[ids.length - 4] as string;
      expect(normal(applyOps(k.state, rollback(k.state, kept, id)))).to.deep.equal(normal(snapshots.get(id) as VariablesState));
      expect(errorOf(() => rollback(k.state, kept, ids[0] as string), 'not_found')).to.include('not in the history');
    });
    it('an unknown id is not_found', () => {
      const { k } = scenario();
      expect(errorOf(() => rollback(k.state, k.entries, 'nope'), 'not_found')).to.include('"nope"');
    });
  });

  describe('prune', () => {
    const entries = (ats: number[]) => ats.map((at) => ({ at, id: String(at) }));
    it('keeps the newest maxEntries', () => {
      const r = prune(entries([50, 40, 30, 20, 10]), { maxEntries: 3, maxAgeMs: 1000 }, 60);
      expect(r.kept.map((e) => e.at)).to.deep.equal([50, 40, 30]);
      expect(r.dropped.map((e) => e.at)).to.deep.equal([20, 10]);
    });
    it('drops entries older than maxAgeMs', () => {
      expect(prune(entries([50, 40, 30, 20, 10]), { maxEntries: 100, maxAgeMs: 25 }, 60).kept.map((e) => e.at)).to.deep.equal([50, 40]);
      expect(prune(entries([50, 40, 30]), { maxEntries: 100, maxAgeMs: 20 }, 60).kept.map((e) => e.at)).to.deep.equal([50, 40]);
    });
    it('keeps a contiguous newest run even when clocks make an older entry look newer', () => {
      expect(prune(entries([50, 10, 45]), { maxEntries: 100, maxAgeMs: 20 }, 60).kept.map((e) => e.at)).to.deep.equal([50]);
    });
    it('keeps nothing when everything is too old, and handles an empty history', () => {
      expect(prune(entries([1, 0]), { maxEntries: 10, maxAgeMs: 5 }, 100).kept).to.deep.equal([]);
      expect(prune([], { maxEntries: 10, maxAgeMs: 5 }, 100)).to.deep.equal({ kept: [], dropped: [] });
    });
    it('rejects bounds that are not positive integers', () => {
      for (const b of [{ maxEntries: 0, maxAgeMs: 1 }, { maxEntries: 1.5, maxAgeMs: 1 }, { maxEntries: 1, maxAgeMs: -1 }, { maxEntries: Number.NaN, maxAgeMs: 1 }])
        expect(() => checkHistoryBounds(b), JSON.stringify(b)).to.throw(RangeError);
    });
  });
});
