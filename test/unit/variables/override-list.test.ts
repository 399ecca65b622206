import { expect } from 'chai';
import {
  firstOverrideOf,
  overridesOfName,
  overridesOfNames,
  overrideWithKey,
  positionOf,
  withOverrideOps,
} from '../../../src/variables/override-list.js';
import { makeOverride, overrideKey, type Override } from '../../../src/variables/overrides.js';
import type { Op } from '../../../src/variables/strategies.js';
import { ALL, parseTarget, type Target } from '../../../src/variables/target.js';

/** applyOps' overrides as the Map by overrideKey has always defined them. */
function reference(list: readonly Override[], ops: readonly Op[]): Override[] {
  const m = new Map(list.map((o) => [overrideKey(o.name, o.target), o]));
  for (const op of ops) {
    if (op.kind === 'override.set') m.set(overrideKey(op.override.name, op.override.target), op.override);
    else if (op.kind === 'override.clear') m.delete(overrideKey(op.name, op.target));
  }
  return [...m.values()];
}

const targets: Target[] = [ALL, parseTarget({ devices: ['a', 'b'] }), parseTarget({ labels: 'os=ios' }), parseTarget({ devices: ['c'] })];
// The same device list in another order is the same override (overrideKey sorts it).
const sameAsSecond: Target = { devices: ['b', 'a'] };

function lookupsAgree(list: readonly Override[], names: readonly string[], label: string): void {
  for (const name of names) {
    const mine = list.filter((o) => o.name === name);
    expect(overridesOfName(list, name), `${label}: ${name}`).to.deep.equal(mine);
    expect(firstOverrideOf(list, name), `${label}: first ${name}`).to.equal(mine[0]);
    for (const t of [...targets, sameAsSecond]) {
      const key = overrideKey(name, t);
      const at = list.findIndex((o) => overrideKey(o.name, o.target) === key);
      expect(positionOf(list, name, key), `${label}: ${key}`).to.equal(at);
      expect(overrideWithKey(list, name, key)).to.equal(at < 0 ? undefined : list[at]);
    }
  }
  const some = names.filter((_, i) => i % 2 === 0);
  expect(overridesOfNames(list, new Set(some)), `${label}: names`).to.deep.equal(list.filter((o) => some.includes(o.name)));
}

describe('variables/override-list', () => {
  it('derives lists as applyOps always has, from the newest list or an older one, and finds in each what a pass would find', () => {
    let seed = 11;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    // Few names, so sets replace, clears hit and cleared overrides come back; many, so lists grow past the appended overlay.
    for (const nameCount of [5, 40, 200]) {
      const names = Array.from({ length: nameCount }, (_, i) => `v${i}`);
      const randomOp = (i: number): Op => {
        const name = names[rnd(names.length)] as string;
        const target = rnd(8) === 0 ? sameAsSecond : (targets[rnd(targets.length)] as Target);
        return rnd(4) === 0 ? { kind: 'override.clear', name, target } : { kind: 'override.set', override: makeOverride({ name, type: 'string', value: String(i) }, target, 'x', i) };
      };
      const lists: Array<{ list: readonly Override[]; json: string }> = [{ list: [], json: '[]' }];
      for (let step = 0; step < 250; step++) {
        // Mostly the newest list (a batch, commit after commit); sometimes an older one (a retry, a second reader).
        const from = rnd(5) === 0 ? (lists[rnd(lists.length)] as (typeof lists)[number]) : (lists.at(-1) as (typeof lists)[number]);
        const ops = Array.from({ length: 1 + rnd(rnd(6) === 0 ? 80 : 4) }, (_, i) => randomOp(step * 100 + i));
        const next = withOverrideOps(from.list, ops);
        expect(next, `${nameCount} names, step ${step}`).to.deep.equal(reference(from.list, ops));
        // The names the operations touched and a few others.
        const asked = [...new Set([...ops.map((op) => (op.kind === 'override.set' ? op.override.name : op.kind === 'override.clear' ? op.name : '')), ...Array.from({ length: 4 }, () => names[rnd(names.length)] as string)])];
        lookupsAgree(next, asked, `${nameCount} names, step ${step}`);
        lookupsAgree(from.list, asked, `${nameCount} names, step ${step}, the list derived from`);
        lists.push({ list: next, json: JSON.stringify(next) });
      }
      // Nothing derived from a list changed it.
      for (const [i, x] of lists.entries()) expect(JSON.stringify(x.list), `list ${i}`).to.equal(x.json);
    }
  });

  it('gives back the list itself when no operation changes it, and ignores strategy operations', () => {
    const list = [makeOverride({ name: 'a', type: 'string', value: '1' }, ALL, 'x', 1)];
    expect(withOverrideOps(list, [])).to.equal(list);
    expect(withOverrideOps(list, [{ kind: 'override.clear', name: 'b', target: ALL }, { kind: 'strategy.delete', name: 's' }])).to.equal(list);
  });

  it('answers right for a list a caller changed in place after it was indexed', () => {
    const o = (name: string, value: string) => makeOverride({ name, type: 'string', value }, ALL, 'x', 1);
    const list = [o('a', '1'), o('b', '1'), o('c', '1')];
    expect(positionOf(list, 'c', overrideKey('c', ALL))).to.equal(2);
    // Swapped behind the index's back: the names it finds no longer fit, so it looks again.
    [list[0], list[2]] = [list[2] as Override, list[0] as Override];
    expect(positionOf(list, 'c', overrideKey('c', ALL))).to.equal(0);
    expect(overridesOfName(list, 'a')).to.deep.equal([o('a', '1')]);
    list.push(o('d', '1'));
    expect(firstOverrideOf(list, 'd')?.name).to.equal('d');
  });
});
