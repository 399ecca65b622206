import { expect } from 'chai';
import {
  ALL,
  canonicalTarget,
  formatSelector,
  globMatch,
  matches,
  MAX_TARGET_DEVICES,
  parseSelector,
  parseTarget,
  sameTarget,
  specificity,
  targetKey,
  type DeviceView,
} from '../../../src/variables/target.js';
import { errorOf } from './helpers.js';

const phone = (deviceId: string, labels: Record<string, string> = {}): DeviceView => ({ deviceId, labels });

describe('variables/target', () => {
  describe('parseTarget', () => {
    it('reads absent, null and {all: true} as every device', () => {
      expect(parseTarget(undefined)).to.deep.equal({ all: true });
      expect(parseTarget(null)).to.deep.equal({ all: true });
      expect(parseTarget({ all: true })).to.deep.equal({ all: true });
    });
    it('reads a device list, deduplicated and sorted', () => {
      expect(parseTarget({ devices: ['p3', 'p1', 'p3', 'p2'] })).to.deep.equal({ devices: ['p1', 'p2', 'p3'] });
    });
    it('reads labels as an object or as a selector string, globs kept', () => {
      expect(parseTarget({ labels: { platform: 'android', build: '1.4.*' } })).to.deep.equal({ labels: { build: '1.4.*', platform: 'android' } });
      expect(parseTarget({ labels: 'platform=android,build=1.4.*' })).to.deep.equal({ labels: { build: '1.4.*', platform: 'android' } });
    });
    it('rejects an empty device list, an empty selector and an empty labels object, saying to omit the target', () => {
      expect(errorOf(() => parseTarget({ devices: [] }))).to.include('target.devices is empty');
      expect(errorOf(() => parseTarget({ labels: {} }))).to.include('target.labels is empty');
      expect(errorOf(() => parseTarget({ labels: '  ' }))).to.include('label selector is empty');
    });
    it('rejects a bad device id, naming its index and the rule', () => {
      expect(errorOf(() => parseTarget({ devices: ['ok', 'my phone'] }))).to.equal('target.devices[1] "my phone" is not a device id (1-64 characters of [A-Za-z0-9._-])');
      expect(errorOf(() => parseTarget({ devices: ['ok', 7] }))).to.include('target.devices[1] 7');
      expect(errorOf(() => parseTarget({ devices: [null] }))).to.include('target.devices[0] null');
      expect(errorOf(() => parseTarget({ devices: ['x'.repeat(65)] }))).to.include('target.devices[0]');
      expect(errorOf(() => parseTarget({ devices: 'p1' }))).to.include('must be an array');
    });
    it(`accepts ${MAX_TARGET_DEVICES} devices and rejects one more`, () => {
      const ids = Array.from({ length: MAX_TARGET_DEVICES }, (_, i) => `dev-${i}`);
      const t = parseTarget({ devices: ids });
      expect((t as { devices: string[] }).devices).to.have.length(MAX_TARGET_DEVICES);
      expect(errorOf(() => parseTarget({ devices: [...ids, 'one-more'] }))).to.include(`at most ${MAX_TARGET_DEVICES}`);
    });
    it('rejects two kinds at once, unknown fields, all other than true and non-objects', () => {
      expect(errorOf(() => parseTarget({ devices: ['a'], labels: { a: 'b' } }))).to.include('exactly one');
      expect(errorOf(() => parseTarget({ device: ['a'] }))).to.include('unknown field "device"');
      expect(errorOf(() => parseTarget({}))).to.include('exactly one');
      expect(errorOf(() => parseTarget({ all: false }))).to.include('target.all must be true');
      expect(errorOf(() => parseTarget('all'))).to.include('target must be an object');
      expect(errorOf(() => parseTarget([]))).to.include('target must be an object');
    });
    it('rejects bad label keys and values naming them, and hostile keys', () => {
      expect(errorOf(() => parseTarget({ labels: { '': 'x' } }))).to.include('label key ""');
      expect(errorOf(() => parseTarget({ labels: { platform: 1 } }))).to.include('label platform must have a string value');
      expect(errorOf(() => parseTarget({ labels: { platform: 'a,b' } }))).to.include('label platform');
      expect(errorOf(() => parseTarget(JSON.parse('{"labels":{"__proto__":"x"}}')))).to.include('"__proto__"');
      expect(errorOf(() => parseTarget({ labels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) }))).to.include('at most 32');
    });
  });

  describe('parseSelector', () => {
    it('parses terms, trimming white space, collapsing ** and sorting keys', () => {
      expect(parseSelector(' platform = android , build=1.4.** ')).to.deep.equal({ build: '1.4.*', platform: 'android' });
      expect(parseSelector('engine=Unity 2022*')).to.deep.equal({ engine: 'Unity 2022*' });
      expect(parseSelector('build=*')).to.deep.equal({ build: '*' });
    });
    it('names the position of an empty term', () => {
      expect(errorOf(() => parseSelector('a=b,,c=d'))).to.equal('label selector has an empty term at position 4');
      expect(errorOf(() => parseSelector('a=b,'))).to.equal('label selector has an empty term at position 4');
      expect(errorOf(() => parseSelector(',a=b'))).to.equal('label selector has an empty term at position 0');
    });
    it('names the position and the problem of a malformed term', () => {
      expect(errorOf(() => parseSelector('a=b, platform'))).to.equal(`label selector term "platform" at position 5 has no '=' (expected key=value)`);
      expect(errorOf(() => parseSelector('=x'))).to.include('at position 0 has no key');
      expect(errorOf(() => parseSelector('a=b,k='))).to.include('term k at position 4 has no value');
      expect(errorOf(() => parseSelector('k=a=b'))).to.include("second '='");
      expect(errorOf(() => parseSelector('k!=a'))).to.include('not !=');
      expect(errorOf(() => parseSelector('1k=a'))).to.include('label selector at position 0: label key "1k"');
      expect(errorOf(() => parseSelector('k=a\u0001'))).to.include('control character');
    });
    it('rejects a key named twice', () => {
      expect(errorOf(() => parseSelector('a=1,b=2,a=3'))).to.equal('label selector names a twice (second time at position 8)');
    });
    it('rejects __proto__ and constructor-like keys only by the key rule', () => {
      expect(errorOf(() => parseSelector('__proto__=x'))).to.include('"__proto__"');
      expect(parseSelector('constructor=x')).to.deep.equal({ constructor: 'x' });
    });
    it('rejects too many terms and oversized text', () => {
      const terms = Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',');
      expect(errorOf(() => parseSelector(terms))).to.include('more than 32 terms');
      expect(errorOf(() => parseSelector(`a=${'x'.repeat(9000)}`))).to.include('over 8192 characters');
    });
    it('round-trips through formatSelector', () => {
      const s = parseSelector('platform=android,build=1.4.*');
      expect(formatSelector(s)).to.equal('build=1.4.*,platform=android');
      expect(parseSelector(formatSelector(s))).to.deep.equal(s);
    });
  });

  describe('globMatch', () => {
    const cases: [string, string, boolean][] = [
      ['1.4.*', '1.4.2', true],
      ['1.4.*', '1.4.', true],
      ['1.4.*', '1.5.0', false],
      ['*', '', true],
      ['*', 'anything', true],
      ['a*c', 'abbbc', true],
      ['a*c', 'abbbd', false],
      ['*droid', 'android', true],
      ['and*', 'android', true],
      ['a*b*c', 'aXbYc', true],
      ['a*b*c', 'aXcYb', false],
      ['android', 'Android', false],
      ['android', 'android', true],
      ['android', 'android2', false],
      ['1.4', '1x4', false],
    ];
    for (const [p, t, want] of cases) it(`${p} ${want ? 'matches' : 'does not match'} ${JSON.stringify(t)}`, () => expect(globMatch(p, t)).to.equal(want));
    it('answers a pattern that makes a naive regex backtrack exponentially (mocha timeout is the hang guard)', () => {
      expect(globMatch(`${'*a'.repeat(60)}*b`, 'a'.repeat(128))).to.equal(false);
      expect(globMatch(`${'*a'.repeat(60)}*`, 'a'.repeat(128))).to.equal(true);
    });
  });

  describe('matches', () => {
    const android = phone('p1', { platform: 'android', build: '1.4.2' });
    const ios = phone('p2', { platform: 'ios', build: '1.5.0' });
    const bare = phone('p3');
    it('every device for all', () => {
      for (const d of [android, ios, bare]) expect(matches(ALL, d)).to.equal(true);
    });
    it('listed devices only', () => {
      const t = parseTarget({ devices: ['p2', 'p3'] });
      expect([android, ios, bare].filter((d) => matches(t, d)).map((d) => d.deviceId)).to.deep.equal(['p2', 'p3']);
    });
    it('a device list built by hand, unsorted, still matches', () => {
      expect(matches({ devices: ['zz', 'p1', 'aa'] }, android)).to.equal(true);
      expect(matches({ devices: ['zz', 'aa'] }, android)).to.equal(false);
    });
    it('every label of the selector, globs included', () => {
      expect(matches(parseTarget({ labels: 'platform=android,build=1.4.*' }), android)).to.equal(true);
      expect(matches(parseTarget({ labels: 'platform=android,build=1.5.*' }), android)).to.equal(false);
      expect(matches(parseTarget({ labels: 'build=1.*' }), ios)).to.equal(true);
    });
    it('a device without the label never matches, not even with *', () => {
      expect(matches(parseTarget({ labels: 'platform=*' }), bare)).to.equal(false);
    });
    it('does not read Object.prototype for a label the device lacks', () => {
      expect(matches(parseTarget({ labels: 'constructor=*' }), bare)).to.equal(false);
      expect(matches(parseTarget({ labels: 'constructor=*' }), phone('p4', { constructor: 'x' }))).to.equal(true);
    });
    it('matches 10k devices against a 10k-device list', () => {
      const ids = Array.from({ length: 10_000 }, (_, i) => `dev-${i}`);
      const t = parseTarget({ devices: ids.filter((_, i) => i % 2 === 0) });
      let n = 0;
      for (const id of ids) if (matches(t, phone(id))) n++;
      expect(n).to.equal(5000);
    });
  });

  describe('specificity', () => {
    it('device > selector > all', () => {
      expect(specificity(parseTarget({ devices: ['a'] }))).to.be.greaterThan(specificity(parseTarget({ labels: 'a=b' })));
      expect(specificity(parseTarget({ labels: 'a=b' }))).to.be.greaterThan(specificity(ALL));
    });
  });

  describe('targetKey', () => {
    it('is the same for the same set in any order or repetition', () => {
      expect(targetKey({ devices: ['b', 'a', 'b'] })).to.equal(targetKey({ devices: ['a', 'b'] }));
      expect(targetKey(parseTarget({ labels: 'b=2,a=1' }))).to.equal(targetKey(parseTarget({ labels: { a: '1', b: '2' } })));
      expect(sameTarget(parseTarget(undefined), { all: true })).to.equal(true);
    });
    it('differs between kinds and sets', () => {
      const keys = [ALL, { devices: ['a'] }, { devices: ['a', 'b'] }, { labels: { a: '1' } }, { labels: { a: '1*' } }, { labels: { a: '1', b: '2' } }].map(targetKey);
      expect(new Set(keys).size).to.equal(keys.length);
    });
    it('follows a target that is not frozen when it changes; a frozen one (stored) keeps the key it has', () => {
      const open: { devices: string[] } = { devices: ['b', 'a'] };
      expect(targetKey(open)).to.equal('devices:a,b');
      open.devices.push('c');
      expect(targetKey(open)).to.equal('devices:a,b,c');
      // Frozen on the outside only: its list can still change, so its key is not kept.
      const shallow = Object.freeze({ devices: ['x'] });
      expect(targetKey(shallow)).to.equal('devices:x');
      shallow.devices.push('y');
      expect(targetKey(shallow)).to.equal('devices:x,y');
      const frozen = Object.freeze({ devices: Object.freeze(['z', 'y']) });
      expect(targetKey(frozen)).to.equal('devices:y,z');
      expect(targetKey(frozen)).to.equal(targetKey({ devices: ['y', 'z'] }));
      const labels = Object.freeze({ labels: Object.freeze({ b: '2', a: '1' }) });
      expect(targetKey(labels)).to.equal(targetKey(parseTarget({ labels: 'a=1,b=2' })));
      expect(targetKey(labels)).to.equal(targetKey(parseTarget({ labels: 'a=1,b=2' })));
    });
    it('canonicalTarget sorts and deduplicates', () => {
      expect(canonicalTarget({ devices: ['b', 'a', 'a'] })).to.deep.equal({ devices: ['a', 'b'] });
      expect(Object.keys((canonicalTarget({ labels: { z: '1', a: '2' } }) as { labels: object }).labels)).to.deep.equal(['a', 'z']);
    });
  });
});
