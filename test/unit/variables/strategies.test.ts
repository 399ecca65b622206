import { expect } from 'chai';
import type { Var } from '../../../src/model.js';
import { applyOps, EMPTY_STATE } from '../../../src/variables/history.js';
import { makeOverride, type Override } from '../../../src/variables/overrides.js';
import { applyStrategy, checkStrategyName, parseStrategy, strategyLabel, strategyOf, type Strategy } from '../../../src/variables/strategies.js';
import { ALL, parseTarget, type DeviceView } from '../../../src/variables/target.js';
import { errorOf } from './helpers.js';

const v = (name: string, value: string, type = 'integer'): Var => ({ name, type, value });
const phone: DeviceView = { deviceId: 'p1', labels: { lab: 'a' } };
const fast: Strategy = { name: 'fast', vars: [v('enemy_speed', '3'), v('spawn_ms', '400')] };
const slow: Strategy = { name: 'slow', vars: [v('enemy_speed', '1'), v('spawn_ms', '900'), v('fog', 'true', 'boolean')] };

function overridesAfter(...groups: Override[][]): readonly Override[] {
  return applyOps(EMPTY_STATE, groups.flat().map((override) => ({ kind: 'override.set' as const, override }))).overrides;
}

describe('variables/strategies', () => {
  describe('parseStrategy', () => {
    it('resolves types (given, existing, inferred) and canonical values', () => {
      const s = parseStrategy({ name: 'fast', vars: [{ name: 'enemy_speed', value: 3 }, { name: 'spawn_ms', value: '400' }, { name: 'g', value: '1.50', type: 'float' }] }, (n) =>
        n === 'spawn_ms' ? 'integer' : undefined,
      );
      expect(s).to.deep.equal({ name: 'fast', vars: [v('enemy_speed', '3'), v('spawn_ms', '400'), v('g', '1.5', 'float')] });
    });
    it('rejects a bad name, naming it', () => {
      expect(errorOf(() => parseStrategy({ name: 'my strategy', vars: [{ name: 'a', value: 1 }] }))).to.include('"my strategy"');
      expect(errorOf(() => parseStrategy({ name: '', vars: [] }))).to.include('strategy name ""');
      expect(errorOf(() => parseStrategy({ name: 'x'.repeat(65), vars: [] }))).to.include('strategy name');
      expect(errorOf(() => parseStrategy({ name: '../etc', vars: [] }))).to.include('"../etc"');
      expect(errorOf(() => parseStrategy({ name: 3, vars: [] }))).to.include('strategy name 3');
      expect(errorOf(() => parseStrategy({ vars: [] }))).to.include('strategy name null');
    });
    it('reserves "mixed", which device views show instead of a name', () => {
      expect(checkStrategyName('mixed')).to.include('reserved');
      expect(checkStrategyName('Mixed')).to.include('reserved');
      expect(checkStrategyName('mixed-2')).to.equal(null);
    });
    it('rejects a value that does not fit its type, naming the variable', () => {
      const msg = errorOf(() => parseStrategy({ name: 'fast', vars: [{ name: 'enemy_speed', value: 'quick' }] }, () => 'integer'));
      expect(msg).to.equal('strategy fast: vars[0]: variable enemy_speed: value "quick" is not a number (type integer)');
    });
    it('rejects bodies of the wrong shape', () => {
      expect(errorOf(() => parseStrategy(null))).to.include('must be an object');
      expect(errorOf(() => parseStrategy([]))).to.include('must be an object');
      expect(errorOf(() => parseStrategy({ name: 'a' }))).to.include('vars must be an array');
      expect(errorOf(() => parseStrategy({ name: 'a', vars: [] }))).to.include('no variables');
      expect(errorOf(() => parseStrategy({ name: 'a', vars: [1] }))).to.include('vars[0] must be an object');
      expect(errorOf(() => parseStrategy({ name: 'a', vars: [{ name: 'x', value: 1 }], extra: 1 }))).to.include('unknown field "extra"');
      expect(errorOf(() => parseStrategy({ name: 'a', vars: [{ name: 'x', value: 1 }, { name: 'x', value: 2 }] }))).to.include('variable x appears twice');
      expect(errorOf(() => parseStrategy({ name: 'a', vars: Array.from({ length: 257 }, (_, i) => ({ name: `v${i}`, value: 1 })) }))).to.include('at most 256');
    });
    it('rejects hostile variable entries without polluting prototypes', () => {
      const body: unknown = JSON.parse('{"name":"a","vars":[{"__proto__":{"name":"x"},"value":1}]}');
      expect(errorOf(() => parseStrategy(body))).to.include('variable name');
      expect(({} as Record<string, unknown>).name).to.equal(undefined);
    });
  });

  describe('applyStrategy', () => {
    it('sets one override per variable, tagged with the strategy, on the target', () => {
      const t = parseTarget({ devices: ['p1', 'p2'] });
      const ops = applyStrategy(fast, t, [], 'ann', 5);
      expect(ops).to.deep.equal([
        { kind: 'override.set', override: { name: 'enemy_speed', type: 'integer', value: '3', target: { devices: ['p1', 'p2'] }, setBy: 'ann', setAt: 5, strategy: 'fast' } },
        { kind: 'override.set', override: { name: 'spawn_ms', type: 'integer', value: '400', target: { devices: ['p1', 'p2'] }, setBy: 'ann', setAt: 5, strategy: 'fast' } },
      ]);
    });
    it('switching presets on a target clears the previous preset\'s variables the new one lacks', () => {
      const t = parseTarget({ labels: 'lab=a' });
      const afterSlow = applyOps(EMPTY_STATE, applyStrategy(slow, t, [], 'ann', 1));
      const ops = applyStrategy(fast, t, afterSlow.overrides, 'ann', 2);
      expect(ops.filter((o) => o.kind === 'override.clear')).to.deep.equal([{ kind: 'override.clear', name: 'fog', target: { labels: { lab: 'a' } } }]);
      const afterFast = applyOps(afterSlow, ops);
      expect(strategyOf(phone, afterFast.overrides, [fast, slow])).to.deep.equal({ kind: 'strategy', name: 'fast' });
    });
    it('leaves plain overrides and other targets alone', () => {
      const plain = makeOverride(v('fog', 'false', 'boolean'), ALL, 'ann', 1);
      const other = makeOverride(v('fog', 'true', 'boolean'), { devices: ['p1'] }, 'ann', 1, 'slow');
      expect(applyStrategy(fast, ALL, [plain, other], 'ann', 2).filter((o) => o.kind === 'override.clear')).to.deep.equal([]);
    });
  });

  describe('strategyOf', () => {
    const strategies = [fast, slow];
    it('none without strategy overrides', () => {
      expect(strategyOf(phone, [makeOverride(v('a', '1'), ALL, 'x', 1)], strategies)).to.deep.equal({ kind: 'none' });
      expect(strategyLabel({ kind: 'none' })).to.equal(null);
    });
    it('the strategy whose overrides are all in effect unchanged', () => {
      const os = overridesAfter(applyStrategy(fast, ALL, [], 'x', 1).map((o) => (o as { override: Override }).override));
      expect(strategyOf(phone, os, strategies)).to.deep.equal({ kind: 'strategy', name: 'fast' });
      expect(strategyLabel(strategyOf(phone, os, strategies))).to.equal('fast');
    });
    it('plain overrides of other variables do not make it mixed', () => {
      const os = applyOps(EMPTY_STATE, [...applyStrategy(fast, ALL, [], 'x', 1), { kind: 'override.set', override: makeOverride(v('music', '0'), ALL, 'x', 2) }]).overrides;
      expect(strategyOf(phone, os, strategies)).to.deep.equal({ kind: 'strategy', name: 'fast' });
    });
    it('mixed once one of its variables is edited', () => {
      const os = applyOps(EMPTY_STATE, [...applyStrategy(fast, ALL, [], 'x', 1), { kind: 'override.set', override: makeOverride(v('spawn_ms', '500'), ALL, 'x', 2) }]).overrides;
      expect(strategyOf(phone, os, strategies)).to.deep.equal({ kind: 'mixed', names: ['fast'] });
      expect(strategyLabel(strategyOf(phone, os, strategies))).to.equal('mixed');
    });
    it('mixed when a more specific plain override wins for one of its variables', () => {
      const os = applyOps(EMPTY_STATE, [...applyStrategy(fast, ALL, [], 'x', 1), { kind: 'override.set', override: makeOverride(v('spawn_ms', '400'), { devices: ['p1'] }, 'x', 0) }]).overrides;
      expect(strategyOf(phone, os, strategies).kind).to.equal('mixed');
      expect(strategyOf({ deviceId: 'p2', labels: {} }, os, strategies).kind).to.equal('strategy');
    });
    it('mixed when the strategy was edited or deleted after being applied', () => {
      const os = applyOps(EMPTY_STATE, applyStrategy(fast, ALL, [], 'x', 1)).overrides;
      const edited: Strategy = { name: 'fast', vars: [v('enemy_speed', '4'), v('spawn_ms', '400')] };
      expect(strategyOf(phone, os, [edited]).kind).to.equal('mixed');
      const grown: Strategy = { name: 'fast', vars: [...fast.vars, v('fog', 'true', 'boolean')] };
      expect(strategyOf(phone, os, [grown]).kind).to.equal('mixed');
      expect(strategyOf(phone, os, []).kind).to.equal('mixed');
    });
    it('mixed, naming both, when two strategies each win somewhere', () => {
      const os = applyOps(EMPTY_STATE, [...applyStrategy(slow, ALL, [], 'x', 1), ...applyStrategy(fast, { devices: ['p1'] }, [], 'x', 2)]).overrides;
      expect(strategyOf(phone, os, strategies)).to.deep.equal({ kind: 'mixed', names: ['fast', 'slow'] });
      expect(strategyOf({ deviceId: 'p2', labels: {} }, os, strategies)).to.deep.equal({ kind: 'strategy', name: 'slow' });
    });
  });
});
