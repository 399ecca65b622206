/**
 * The client actor's winners cache (src/clients/winners.ts): whatever lists it is handed, one after
 * the other, it answers exactly what inEffect, inEffectVars and pending answer (values and order),
 * and it computes once per kind of device and patches a list whose overrides were replaced in place.
 */
import { expect } from 'chai';
import { pendingFrom, WinnersCache } from '../../../src/clients/winners.js';
import type { Var } from '../../../src/model.js';
import { applyOps, inEffect, inEffectVars, makeOverride, pending, type DeviceView, type Override, type Target } from '../../../src/variables/index.js';

/** A small deterministic PRNG, so a failure names its seed and replays. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const NAMES = ['speed', 'lives', 'gravity', 'mode', 'boss'];
const DEVICES = ['d1', 'd2', 'd3', 'd4'];
const LABEL_SETS: Array<Record<string, string>> = [{}, { tier: 'gold' }, { tier: 'silver', region: 'eu' }, { tier: 'gold', region: 'us' }];

function pick<T>(r: () => number, list: readonly T[]): T {
  return list[Math.floor(r() * list.length)] as T;
}

function randomTarget(r: () => number): Target {
  const k = r();
  if (k < 0.4) return { all: true };
  if (k < 0.7) return { labels: r() < 0.5 ? { tier: pick(r, ['gold', 'silver', 'g*']) } : { region: pick(r, ['eu', 'us']) } };
  return { devices: DEVICES.filter(() => r() < 0.4).concat(pick(r, DEVICES)) };
}

/** Frozen as the stores hand them out. */
function stored(o: Override): Override {
  Object.freeze(o.target);
  if ('labels' in o.target) Object.freeze(o.target.labels);
  if ('devices' in o.target) Object.freeze(o.target.devices);
  return Object.freeze(o);
}

let clock = 1000;
function randomOverride(r: () => number, name = pick(r, NAMES)): Override {
  clock += r() < 0.2 ? 0 : 1;
  return stored(makeOverride({ name, type: 'integer', value: String(Math.floor(r() * 5)) }, randomTarget(r), 'a@b.c', clock));
}

function views(r: () => number): DeviceView[] {
  return DEVICES.flatMap((id) => [{ deviceId: id, labels: pick(r, LABEL_SETS) }, { deviceId: `${id}x`, labels: pick(r, LABEL_SETS) }]);
}

function randomLastSent(r: () => number): Map<string, Var> {
  const m = new Map<string, Var>();
  for (const name of NAMES) if (r() < 0.6) m.set(name, { name, type: 'integer', value: String(Math.floor(r() * 5)) });
  return m;
}

function randomReported(r: () => number): Var[] {
  return NAMES.filter(() => r() < 0.5).map((name) => ({ name, type: 'integer', value: String(Math.floor(r() * 5)) }));
}

/** The next list: mostly overrides replaced in place (a dashboard edit), sometimes added, removed or not frozen. */
function nextList(r: () => number, list: Override[]): Override[] {
  const k = r();
  if (k < 0.55 && list.length > 0) {
    const at = Math.floor(r() * list.length);
    const o = list[at] as Override;
    // Re-set: same variable and target (applyOps keeps its place), sometimes another target (added).
    const again = stored(makeOverride({ name: o.name, type: 'integer', value: String(Math.floor(r() * 5)) }, r() < 0.8 ? o.target : randomTarget(r), 'a@b.c', ++clock));
    return applyOps({ overrides: list, strategies: [] }, [{ kind: 'override.set', override: again }]).overrides as Override[];
  }
  if (k < 0.62) return [...list, randomOverride(r)];
  if (k < 0.7 && list.length > 1) {
    // One removed and one of the same variable added at once: the places shift under the same names.
    const at = Math.floor(r() * list.length);
    return [...list.slice(0, at), ...list.slice(at + 1), randomOverride(r, (list[at] as Override).name)];
  }
  if (k < 0.8 && list.length > 0) return list.filter((_, i) => i !== Math.floor(r() * list.length));
  if (k < 0.85) return list.map((o) => ({ ...o }));
  if (k < 0.9) return list;
  return [...list];
}

function expectSame(cache: WinnersCache, list: readonly Override[], vs: readonly DeviceView[], r: () => number, where: string): void {
  for (const v of vs) {
    const want = inEffect(v, list);
    expect([...cache.winners(v)], `${where} winners of ${JSON.stringify(v)}`).to.deep.equal([...want]);
    expect(cache.vars(v), `${where} vars`).to.deep.equal(inEffectVars(v, list));
    const last = randomLastSent(r);
    const reported = randomReported(r);
    expect(cache.pending(v, last, reported), `${where} pending`).to.deep.equal(pending(inEffectVars(v, list), last, reported));
  }
}

describe('clients/winners: the winners cache', () => {
  it('answers inEffect, inEffectVars and pending exactly, in order, over 100 random sequences of lists', () => {
    for (let seed = 1; seed <= 100; seed++) {
      const r = rng(seed);
      const cache = new WinnersCache();
      let list: Override[] = Array.from({ length: 1 + Math.floor(r() * 12) }, () => randomOverride(r));
      let vs = views(r);
      for (let step = 0; step < 20; step++) {
        cache.use(list);
        expectSame(cache, list, vs, r, `seed ${seed} step ${step}`);
        list = nextList(r, list);
        // A device's labels change now and then (a d: line).
        if (r() < 0.1) vs = views(r);
      }
    }
  });

  it('names what can differ from the list before (change), and pendingOf a device synced under it is pending, over 100 random sequences', () => {
    let checked = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const r = rng(seed);
      const cache = new WinnersCache();
      let list: Override[] = Array.from({ length: 1 + Math.floor(r() * 12) }, () => randomOverride(r));
      const vs = views(r);
      cache.use(list);
      for (let step = 0; step < 20; step++) {
        const before = list;
        // Each device synced under the list before: its last-sent is exactly its winners then.
        const synced = vs.map((v) => new Map(inEffectVars(v, before).map((x) => [x.name, x])));
        list = nextList(r, list);
        cache.use(list);
        const ch = cache.change;
        if (!ch) continue;
        expect(ch.from === before || ch.from === list, `seed ${seed} step ${step}`).to.equal(true);
        vs.forEach((v, i) => {
          const last = synced[i] as Map<string, Var>;
          const reported = randomReported(r);
          const want = pending(inEffectVars(v, list), last, reported);
          const got = cache.pendingOf(v, ch.names, last);
          if (got === null) return;
          checked += 1;
          expect(got, `seed ${seed} step ${step} ${JSON.stringify(v)}`).to.deep.equal(want);
        });
      }
    }
    expect(checked).to.be.greaterThan(500);
  });

  it('computes once for any number of devices of one label set, and once more per device a device list names', () => {
    const cache = new WinnersCache();
    const list = [stored(makeOverride({ name: 'speed', type: 'integer', value: '1' }, { all: true }, 'a', 1)), stored(makeOverride({ name: 'speed', type: 'integer', value: '2' }, { devices: ['d7'] }, 'a', 2))];
    cache.use(list);
    for (let i = 0; i < 1000; i++) expect(cache.winners({ deviceId: `d${i}`, labels: { tier: 'gold' } }).get('speed')?.value).to.equal(i === 7 ? '2' : '1');
    expect(cache.computed).to.equal(2);
    // The next pass over the same stored objects computes nothing.
    cache.use([...list]);
    cache.vars({ deviceId: 'd1', labels: { tier: 'gold' } });
    expect(cache.computed).to.equal(2);
  });

  it('ranks again only the replaced variable when an override is replaced in place (a thousand overrides, one change)', () => {
    const cache = new WinnersCache();
    const view: DeviceView = { deviceId: 'dev', labels: {} };
    let list = Array.from({ length: 1000 }, (_, i) => stored(makeOverride({ name: `v${i}`, type: 'integer', value: '0' }, { all: true }, 'a', i)));
    cache.use(list);
    expect(cache.vars(view)).to.have.length(1000);
    for (let n = 1; n <= 5; n++) {
      const again = stored(makeOverride({ name: 'v500', type: 'integer', value: String(n) }, { all: true }, 'b', 5000 + n));
      list = applyOps({ overrides: list, strategies: [] }, [{ kind: 'override.set', override: again }]).overrides as Override[];
      cache.use(list);
      expect(cache.vars(view)[500]).to.deep.equal({ name: 'v500', type: 'integer', value: String(n) });
      expect(cache.pending(view, new Map(inEffectVars(view, list).map((v) => [v.name, v])), [])).to.deep.equal([]);
    }
    expect(cache.computed).to.equal(1);
    expect(cache.patched).to.equal(5);
  });

  it('patches, not recomputes, when hundreds of a thousand overrides are replaced at once (a pass after a burst of changes)', () => {
    const cache = new WinnersCache();
    const views: DeviceView[] = [
      { deviceId: 'dev', labels: {} },
      { deviceId: 'd2', labels: { tier: 'gold' } },
    ];
    let list = Array.from({ length: 1024 }, (_, i) => stored(makeOverride({ name: `v${i}`, type: 'integer', value: '0' }, i % 4 ? { all: true } : { labels: { tier: 'gold' } }, 'a', i)));
    cache.use(list);
    for (const v of views) expect(cache.vars(v)).to.deep.equal(inEffectVars(v, list));
    for (let round = 1; round <= 3; round++) {
      const ops = Array.from({ length: 300 }, (_, j) => {
        const o = list[(j * 3 + round) % 1024] as Override;
        return { kind: 'override.set' as const, override: stored(makeOverride({ name: o.name, type: 'integer', value: String(round) }, o.target, 'b', 10_000 * round + j)) };
      });
      list = applyOps({ overrides: list, strategies: [] }, ops).overrides as Override[];
      cache.use(list);
      for (const v of views) {
        expect(cache.vars(v), `round ${round}`).to.deep.equal(inEffectVars(v, list));
        expect([...cache.winners(v)]).to.deep.equal([...inEffect(v, list)]);
      }
    }
    expect(cache.computed).to.equal(2);
    expect(cache.patched).to.equal(6);
  });

  it('computes overrides that are not frozen once per kind of device until the next use(), and afresh after it', () => {
    const cache = new WinnersCache();
    const view: DeviceView = { deviceId: 'dev', labels: {} };
    const named: DeviceView = { deviceId: 'd7', labels: {} };
    const o = makeOverride({ name: 'speed', type: 'integer', value: '1' }, { all: true }, 'a', 1);
    const list = [o, makeOverride({ name: 'speed', type: 'integer', value: '9' }, { devices: ['d7'] }, 'a', 2)];
    cache.use(list);
    for (let i = 0; i < 5; i++) {
      expect(cache.vars(view)).to.deep.equal([{ name: 'speed', type: 'integer', value: '1' }]);
      expect(cache.winners(view).get('speed')?.value).to.equal('1');
      // A device a device list names is a kind of its own here too.
      expect(cache.vars(named)).to.deep.equal([{ name: 'speed', type: 'integer', value: '9' }]);
    }
    expect(cache.computed).to.equal(2);
    (o as { value: string }).value = '2';
    // The very same list again: its objects may have changed, so it is computed afresh.
    cache.use(list);
    expect(cache.vars(view)).to.deep.equal([{ name: 'speed', type: 'integer', value: '2' }]);
    expect(cache.computed).to.equal(3);
  });

  it('keeps at most 32,768 winners across kinds of device (32 kinds of a thousand overrides), answering the others all the same', () => {
    const cache = new WinnersCache();
    const list = Array.from({ length: 1024 }, (_, i) => stored(makeOverride({ name: `v${i}`, type: 'integer', value: '0' }, i % 2 ? { all: true } : { labels: { tier: 't*' } }, 'a', i)));
    cache.use(list);
    const kinds = Array.from({ length: 100 }, (_, i): DeviceView => ({ deviceId: `d${i}`, labels: { tier: i % 10 === 0 ? 'gold' : `t${i}` } }));
    for (const v of kinds) expect(cache.vars(v)).to.deep.equal(inEffectVars(v, list));
    expect(cache.kinds).to.equal(32);
    for (const v of kinds) expect(cache.vars(v)).to.deep.equal(inEffectVars(v, list));
  });

  it('computes afresh from overrides that are not frozen (their objects may have changed since)', () => {
    const cache = new WinnersCache();
    const view: DeviceView = { deviceId: 'dev', labels: {} };
    const o = makeOverride({ name: 'speed', type: 'integer', value: '1' }, { all: true }, 'a', 1);
    const list = [o];
    cache.use(list);
    expect(cache.vars(view)).to.deep.equal([{ name: 'speed', type: 'integer', value: '1' }]);
    (o as { value: string }).value = '2';
    cache.use([o]);
    expect(cache.vars(view)).to.deep.equal([{ name: 'speed', type: 'integer', value: '2' }]);
  });

  it('pendingFrom is pending with the winners as the covered names', () => {
    const vars: Var[] = [{ name: 'a', type: 'integer', value: '1' }];
    const covered = new Map([['a', null]]);
    const last = new Map<string, Var>([
      ['a', { name: 'a', type: 'integer', value: '0' }],
      ['b', { name: 'b', type: 'integer', value: '5' }],
      ['c', { name: 'c', type: 'integer', value: '7' }],
    ]);
    const reported: Var[] = [
      { name: 'b', type: 'integer', value: '4' },
      { name: 'c', type: 'integer', value: '7' },
    ];
    expect(pendingFrom(vars, covered, last, reported)).to.deep.equal(pending(vars, last, reported));
    expect(pendingFrom(vars, covered, last, reported)).to.deep.equal([
      { name: 'a', type: 'integer', value: '1' },
      { name: 'b', type: 'integer', value: '4' },
    ]);
  });
});
