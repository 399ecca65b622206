import { expect } from 'chai';
import type { Var } from '../../../src/model.js';
import {
  affectedDevices,
  effective,
  inEffect,
  inEffectVars,
  makeOverride,
  onReport,
  onReports,
  onVerify,
  outranks,
  overrideKey,
  type Override,
} from '../../../src/variables/overrides.js';
import { ALL, parseTarget, type DeviceView } from '../../../src/variables/target.js';

const v = (name: string, value: string, type = 'integer'): Var => ({ name, type, value });
const android: DeviceView = { deviceId: 'p1', labels: { platform: 'android', build: '1.4.2' } };
const ios: DeviceView = { deviceId: 'p2', labels: { platform: 'ios' } };
const bare: DeviceView = { deviceId: 'p3', labels: {} };

const all = (name: string, value: string, at = 1): Override => makeOverride(v(name, value), ALL, 'ann@x.io', at);
const sel = (name: string, value: string, selector: string, at = 1): Override => makeOverride(v(name, value), parseTarget({ labels: selector }), 'ann@x.io', at);
const dev = (name: string, value: string, ids: string[], at = 1): Override => makeOverride(v(name, value), { devices: ids }, 'ann@x.io', at);

describe('variables/overrides', () => {
  describe('precedence', () => {
    it('device beats selector beats all, whatever the order or time they were set', () => {
      const os = [dev('speed', '3', ['p1'], 1), sel('speed', '2', 'platform=android', 5), all('speed', '1', 9)];
      for (const order of [os, [...os].reverse(), [os[1], os[2], os[0]] as Override[]]) {
        expect(inEffect(android, order).get('speed')?.value).to.equal('3');
        expect(inEffect({ ...android, deviceId: 'p9' }, order).get('speed')?.value).to.equal('2');
        expect(inEffect(ios, order).get('speed')?.value).to.equal('1');
      }
    });
    it('within one specificity the latest set wins', () => {
      const a = sel('speed', '2', 'platform=android', 10);
      const b = sel('speed', '5', 'build=1.4.*', 20);
      expect(inEffect(android, [a, b]).get('speed')?.value).to.equal('5');
      expect(inEffect(android, [b, a]).get('speed')?.value).to.equal('5');
      const c = dev('speed', '7', ['p1', 'p2'], 30);
      const d = dev('speed', '8', ['p1'], 25);
      expect(inEffect(android, [c, d]).get('speed')?.value).to.equal('7');
    });
    it('an exact tie in time is broken by the target key, the same on every node', () => {
      const a = sel('speed', '2', 'platform=android', 10);
      const b = sel('speed', '5', 'build=1.4.*', 10);
      const winner = inEffect(android, [a, b]).get('speed')?.value;
      expect(inEffect(android, [b, a]).get('speed')?.value).to.equal(winner);
      expect(outranks(a, b)).to.equal(!outranks(b, a));
    });
    it('an override that does not match is ignored', () => {
      expect(inEffect(ios, [sel('speed', '2', 'platform=android')]).size).to.equal(0);
      expect(inEffect(bare, [sel('speed', '2', 'platform=*')]).size).to.equal(0);
    });
    it('keys overrides by variable and canonical target', () => {
      expect(overrideKey('speed', { devices: ['b', 'a'] })).to.equal(overrideKey('speed', { devices: ['a', 'b'] }));
      expect(overrideKey('speed', ALL)).to.not.equal(overrideKey('spee', ALL));
      expect(makeOverride(v('s', '1'), { devices: ['b', 'a'] }, 'x', 1).target).to.deep.equal({ devices: ['a', 'b'] });
    });
  });

  describe('effective', () => {
    it('says for each variable its reported and override value and which one is in effect', () => {
      const reported = [v('speed', '1'), v('lives', '3'), v('speed', '2')];
      const overrides = [all('speed', '9', 5), dev('gravity', '10', ['p1'])];
      expect(effective(android, reported, overrides)).to.deep.equal([
        { name: 'speed', type: 'integer', reported: '2', override: '9', effective: '9', source: 'override', target: { all: true }, strategy: null },
        { name: 'lives', type: 'integer', reported: '3', override: null, effective: '3', source: 'reported', target: null, strategy: null },
        { name: 'gravity', type: 'integer', reported: null, override: '10', effective: '10', source: 'override', target: { devices: ['p1'] }, strategy: null },
      ]);
    });
    it('shows only the reported values for a device no override matches', () => {
      expect(effective(ios, [v('a', '1')], [dev('a', '2', ['p1'])]).map((e) => e.source)).to.deep.equal(['reported']);
    });
    it('names the strategy of the override in effect', () => {
      const o = makeOverride(v('a', '1'), ALL, 'x', 1, 'fast');
      expect(effective(bare, [], [o])[0]?.strategy).to.equal('fast');
    });
  });

  describe('onVerify', () => {
    it('sends every override in effect and replaces what the device was sent', () => {
      const overrides = [all('a', '1'), sel('b', '2', 'platform=android'), dev('c', '3', ['p2'])];
      const r = onVerify(android, overrides);
      expect(r.send).to.deep.equal([v('a', '1'), v('b', '2')]);
      expect([...r.lastSent.keys()]).to.deep.equal(['a', 'b']);
    });
    it('sends nothing when nothing is in effect', () => {
      expect(onVerify(bare, [dev('c', '3', ['p2'])]).send).to.deep.equal([]);
    });
  });

  describe('onReport', () => {
    const overrides = [all('speed', '9'), dev('lives', '5', ['p1'])];
    it('sends the override again for a disagreeing report and keeps the report as the game value', () => {
      const r = onReport(android, [], [v('speed', '1'), v('lives', '5'), v('fuel', '7')], overrides, new Map());
      expect(r.send).to.deep.equal([v('speed', '9')]);
      expect(r.reported).to.deep.equal([v('speed', '1'), v('lives', '5'), v('fuel', '7')]);
      expect(r.lastSent.get('speed')).to.deep.equal(v('speed', '9'));
    });
    it('sends each variable once per report even when the report names it twice (the later value counts)', () => {
      const r = onReport(android, [], [v('speed', '1'), v('speed', '2')], overrides, new Map());
      expect(r.send).to.deep.equal([v('speed', '9')]);
      expect(r.reported).to.deep.equal([v('speed', '2')]);
      const agree = onReport(android, [], [v('speed', '1'), v('speed', '9')], overrides, new Map());
      expect(agree.send).to.deep.equal([]);
    });
    it('sends it again on every disagreeing report, not only the first', () => {
      let state = onReport(android, [], [v('speed', '1')], overrides, new Map());
      state = onReport(android, state.reported, [v('speed', '1')], overrides, state.lastSent);
      expect(state.send).to.deep.equal([v('speed', '9')]);
    });
    it('treats a report equal to the override as an echo: the game value stays what it was', () => {
      const r = onReport(android, [v('speed', '1')], [v('speed', '9')], overrides, new Map());
      expect(r.send).to.deep.equal([]);
      expect(r.reported).to.deep.equal([v('speed', '1')]);
    });
    it('keeps an echo as the reported value when the device never reported the variable before', () => {
      expect(onReport(android, [], [v('speed', '9')], overrides, new Map()).reported).to.deep.equal([v('speed', '9')]);
    });
    it('compares values in canonical form for their type, so formatting does not cause resends', () => {
      const f = [makeOverride(v('g', '1.5', 'float'), ALL, 'x', 1)];
      expect(onReport(bare, [], [v('g', '1.50', 'float')], f, new Map()).send).to.deep.equal([]);
      expect(onReport(bare, [], [v('g', '1.6', 'float')], f, new Map()).send).to.have.length(1);
      const s = [makeOverride(v('n', 'abc', 'string'), ALL, 'x', 1)];
      expect(onReport(bare, [], [v('n', 'abc ', 'string')], s, new Map()).send).to.have.length(1);
    });
    it('forgets what was sent for a variable the game reports while no override covers it', () => {
      const sent = new Map([['fuel', v('fuel', '2')]]);
      const r = onReport(android, [], [v('fuel', '7')], overrides, sent);
      expect(r.lastSent.has('fuel')).to.equal(false);
      expect(r.send).to.deep.equal([]);
    });
  });

  describe('onReports', () => {
    const overrides = [all('speed', '9'), dev('lives', '5', ['p1'])];
    /** The reference: onReport applied to each report in turn, what they ask to resend collected once per name. */
    const oneByOne = (device: DeviceView, reported: Var[], reports: Var[][], sent: Map<string, Var>) => {
      let r = { reported, send: [] as Var[], lastSent: sent };
      const again = new Map<string, Var>();
      for (const rep of reports) {
        r = onReport(device, r.reported, rep, overrides, r.lastSent);
        for (const x of r.send) again.set(x.name, x);
      }
      return { reported: r.reported, send: [...again.values()], lastSent: r.lastSent };
    };
    it('folds reports exactly as onReport one by one: an own value then an echo stays the own value, new names keep first-seen order', () => {
      const reports = [
        [v('speed', '1'), v('fuel', '7')],
        [v('speed', '9'), v('ammo', '3'), v('fuel', '8'), v('fuel', '6')],
        [v('lives', '2'), v('new', '1')],
        [v('lives', '5'), v('speed', '4')],
      ];
      const sent = new Map([['fuel', v('fuel', '2')], ['lives', v('lives', '5')]]);
      const got = onReports(android, [v('old', '1'), v('lives', '1')], reports, overrides, sent);
      expect(got).to.deep.equal(oneByOne(android, [v('old', '1'), v('lives', '1')], reports, sent));
      // Spelled out, so a reference that drifted would be caught too.
      expect(got.reported).to.deep.equal([v('old', '1'), v('lives', '2'), v('speed', '4'), v('fuel', '6'), v('ammo', '3'), v('new', '1')]);
      expect(got.send).to.deep.equal([v('speed', '9'), v('lives', '5')]);
      expect(got.lastSent.has('fuel')).to.equal(false);
      // The input map is the caller's: it is not changed.
      expect(sent.get('fuel')).to.deep.equal(v('fuel', '2'));
    });
    it('agrees with onReport one by one on many random streams', () => {
      let seed = 7;
      const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
      for (let t = 0; t < 200; t++) {
        const names = ['speed', 'lives', 'fuel', 'ammo'];
        const pick = (): Var => v(names[rnd(4)] as string, String(rnd(3) === 0 ? (rnd(2) ? 9 : 5) : rnd(10)));
        const reports = Array.from({ length: 1 + rnd(6) }, () => Array.from({ length: 1 + rnd(4) }, pick));
        const reported = Array.from({ length: rnd(3) }, pick);
        const sent = new Map(Array.from({ length: rnd(3) }, pick).map((x) => [x.name, x]));
        expect(onReports(android, reported, reports, overrides, sent)).to.deep.equal(oneByOne(android, reported, reports, sent));
      }
    });
  });

  describe('affectedDevices', () => {
    const devices = [android, ios, bare];
    it('lists the devices whose overrides in effect change', () => {
      const before = [all('a', '1')];
      expect(affectedDevices(devices, before, [...before, sel('a', '2', 'platform=android')])).to.deep.equal(['p1']);
      expect(affectedDevices(devices, before, [])).to.deep.equal(['p1', 'p2', 'p3']);
      expect(affectedDevices(devices, before, before)).to.deep.equal([]);
    });
    it('a new override with the value already in effect reaches no one', () => {
      const before = [all('a', '1')];
      expect(affectedDevices(devices, before, [...before, sel('a', '1', 'platform=ios', 5)])).to.deep.equal([]);
    });
    it('given the names a change touches, looks at their overrides only, with the same answer', () => {
      // Other variables' overrides, some of which a device-by-device look over everything would count.
      const others = [all('b', '1'), sel('b', '2', 'platform=ios', 3), dev('c', '5', ['p3'])];
      const before = [...others, all('a', '1')];
      const cases: Array<[Override[], string[]]> = [
        [[...others, all('a', '1'), sel('a', '2', 'platform=android')], ['p1']],
        [[...others], ['p1', 'p2', 'p3']],
        [[...others, all('a', '1', 7)], []],
        [[...others, all('a', '1'), dev('a', '9', ['p2', 'p3'])], ['p2', 'p3']],
      ];
      for (const [after, want] of cases) {
        expect(affectedDevices(devices, before, after, new Set(['a']))).to.deep.equal(want);
        expect(affectedDevices(devices, before, after)).to.deep.equal(want);
      }
      // A name outside the set is not looked at: a change of `b` passed as one of `a` reaches no one.
      expect(affectedDevices(devices, before, [all('b', '9'), ...before.slice(1)], new Set(['a']))).to.deep.equal([]);
      expect(affectedDevices(devices, before, [all('b', '9'), ...before.slice(1)], new Set(['b']))).to.deep.equal(['p1', 'p3']);
    });
  });

  describe('inEffectVars at scale', () => {
    it('resolves 10k devices against device-list, selector and all overrides', () => {
      const ids = Array.from({ length: 10_000 }, (_, i) => `d${i}`);
      const overrides = [all('x', '1'), dev('x', '3', ids.slice(0, 100)), sel('x', '2', 'ring=even')];
      const counts = new Map<string, number>();
      for (let i = 0; i < ids.length; i++) {
        const d: DeviceView = { deviceId: ids[i] as string, labels: i % 2 === 0 ? { ring: 'even' } : {} };
        const val = inEffectVars(d, overrides)[0]?.value ?? '';
        counts.set(val, (counts.get(val) ?? 0) + 1);
      }
      expect(Object.fromEntries(counts)).to.deep.equal({ '3': 100, '2': 4950, '1': 4950 });
    });
  });
});

describe('variables/overrides with hostile variable names', () => {
  it('handles variables named __proto__, constructor and toString like any other', () => {
    const names = ['__proto__', 'constructor', 'toString'];
    const overrides = names.map((n, i) => makeOverride(v(n, String(i)), ALL, 'x', 1));
    const d: DeviceView = { deviceId: 'p1', labels: {} };
    expect(inEffectVars(d, overrides).map((x) => x.name)).to.deep.equal(names);
    expect(effective(d, [v('__proto__', '7')], overrides).map((e) => [e.name, e.reported, e.effective])).to.deep.equal([
      ['__proto__', '7', '0'],
      ['constructor', null, '1'],
      ['toString', null, '2'],
    ]);
    const r = onReport(d, [], [v('__proto__', '5')], overrides, new Map());
    expect(r.send).to.deep.equal([v('__proto__', '0')]);
    expect(({} as Record<string, unknown>).value).to.equal(undefined);
  });
});
