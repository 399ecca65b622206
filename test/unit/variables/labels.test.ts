import { expect } from 'chai';
import {
  checkLabelKey,
  checkLabels,
  checkLabelValue,
  encodeLabelsLine,
  labelOf,
  labelsFromJson,
  MAX_LABELS,
  MAX_LABELS_PAYLOAD_BASE64,
  parseLabelsPayload,
} from '../../../src/variables/labels.js';
import { b64 } from './helpers.js';

describe('variables/labels', () => {
  describe('checkLabelKey', () => {
    it('accepts keys of letters, digits and ._- starting with a letter, up to 63', () => {
      for (const k of ['platform', 'build', 'a', 'Engine.Version', 'os-name_2', `k${'x'.repeat(62)}`]) expect(checkLabelKey(k), k).to.equal(null);
    });
    it('rejects empty, too long, non-letter starts, other characters and prototype names', () => {
      for (const k of ['', `k${'x'.repeat(63)}`, '1build', '_x', '__proto__', '-a', 'a b', 'a=b', 'a,b', 'a:b', 'plätform', 'a\n'])
        expect(checkLabelKey(k), JSON.stringify(k)).to.be.a('string').that.includes('label key');
    });
  });

  describe('checkLabelValue', () => {
    it('accepts printable values of 1-128 characters, including spaces inside and non-ASCII', () => {
      for (const v of ['android', '1.4.2+b5', 'Unity 2022.3.1f1', 'häagen', 'x'.repeat(128), 'a/b:c']) expect(checkLabelValue('k', v), v).to.equal(null);
    });
    it('rejects non-strings, empty, over 128, control characters, the selector characters and outer white space', () => {
      const cases: unknown[] = [1, true, null, {}, [], '', 'x'.repeat(129), 'a\u0000', 'a\tb', 'a,b', 'a=b', 'a*', ' a', 'a '];
      for (const v of cases) expect(checkLabelValue('k', v), JSON.stringify(v)).to.be.a('string').that.includes('label k');
    });
    it('allows * in patterns only', () => {
      expect(checkLabelValue('k', '1.4.*', true)).to.equal(null);
      expect(checkLabelValue('k', '*', true)).to.equal(null);
      expect(checkLabelValue('k', '1.4.*')).to.be.a('string');
      expect(checkLabelValue('k', 'a,*', true)).to.be.a('string');
    });
  });

  describe('checkLabels', () => {
    it('returns the labels with keys sorted', () => {
      const r = checkLabels({ platform: 'android', build: '1.4.2' });
      expect(r).to.deep.equal({ labels: { build: '1.4.2', platform: 'android' } });
      if ('labels' in r) expect(Object.keys(r.labels)).to.deep.equal(['build', 'platform']);
    });
    it('accepts an empty object (an SDK with no labels)', () => {
      expect(checkLabels({})).to.deep.equal({ labels: {} });
    });
    it('rejects what is not an object', () => {
      for (const v of [null, [], 'x', 1, [['a', 'b']]]) expect(checkLabels(v), JSON.stringify(v)).to.have.property('problem').that.includes('JSON object');
    });
    it(`rejects more than ${MAX_LABELS} labels, naming the count`, () => {
      const many = Object.fromEntries(Array.from({ length: MAX_LABELS + 1 }, (_, i) => [`k${i}`, 'v']));
      expect(checkLabels(many)).to.deep.equal({ problem: `at most ${MAX_LABELS} labels (got ${MAX_LABELS + 1})` });
      const max = Object.fromEntries(Array.from({ length: MAX_LABELS }, (_, i) => [`k${i}`, 'v']));
      expect(checkLabels(max)).to.have.property('labels');
    });
    it('rejects a __proto__ key from JSON.parse without touching any prototype', () => {
      const hostile: unknown = JSON.parse('{"__proto__":{"polluted":"yes"},"platform":"x"}');
      expect(checkLabels(hostile)).to.have.property('problem').that.includes('__proto__');
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    });
    it('keeps keys named like Object.prototype members as plain own labels', () => {
      const r = checkLabels(JSON.parse('{"constructor":"a","toString":"b","hasOwnProperty":"c"}'));
      expect(r).to.have.property('labels');
      if ('labels' in r) {
        expect(labelOf(r.labels, 'constructor')).to.equal('a');
        expect(labelOf(r.labels, 'hasOwnProperty')).to.equal('c');
      }
    });
    it('names the label whose value is bad', () => {
      expect(checkLabels({ platform: 3 })).to.deep.equal({ problem: 'label platform must have a string value' });
    });
  });

  describe('labelOf', () => {
    it('never reads inherited members', () => {
      expect(labelOf({}, 'constructor')).to.equal(undefined);
      expect(labelOf({}, 'toString')).to.equal(undefined);
      expect(labelOf({ a: 'b' }, 'a')).to.equal('b');
    });
  });

  describe('parseLabelsPayload and encodeLabelsLine', () => {
    it('round-trips labels, non-ASCII included', () => {
      const line = encodeLabelsLine('AbCdEf012345', { platform: 'android', engine: 'Unity 2022', owner: 'zoë' });
      expect(line.startsWith('d:AbCdEf012345:')).to.equal(true);
      expect(parseLabelsPayload(line.slice('d:AbCdEf012345:'.length))).to.deep.equal({
        kind: 'labels',
        labels: { engine: 'Unity 2022', owner: 'zoë', platform: 'android' },
      });
    });
    it('accepts missing padding like the other payloads', () => {
      const padded = b64('{"a":"bc"}');
      expect(padded.endsWith('=')).to.equal(true);
      expect(parseLabelsPayload(padded.replace(/=+$/, ''))).to.deep.equal({ kind: 'labels', labels: { a: 'bc' } });
    });
    it('rejects bad base64 with bad_base64', () => {
      for (const p of ['', 'e30-', 'e3 0=', 'e3=0', 'A', 'AAAAA', '===='])
        expect(parseLabelsPayload(p), p).to.include({ kind: 'error', code: 'bad_base64' });
    });
    it('rejects text that is not JSON (a BOM included) with bad_json', () => {
      expect(parseLabelsPayload(b64('{platform:android}'))).to.include({ kind: 'error', code: 'bad_json' });
      expect(parseLabelsPayload(b64('\ufeff{}'))).to.include({ kind: 'error', code: 'bad_json' });
    });
    it('rejects JSON that is not an object of good labels with bad_shape naming the problem', () => {
      expect(parseLabelsPayload(b64('[]'))).to.deep.include({ kind: 'error', code: 'bad_shape' });
      expect(parseLabelsPayload(b64('"x"'))).to.deep.include({ kind: 'error', code: 'bad_shape' });
      const bad = parseLabelsPayload(b64('{"1x":"a"}'));
      expect(bad).to.include({ kind: 'error', code: 'bad_shape' });
      expect((bad as { message: string }).message).to.include('"1x"');
    });
    it('rejects a payload over the limit before decoding it', () => {
      const big = 'A'.repeat(MAX_LABELS_PAYLOAD_BASE64 + 4);
      expect(parseLabelsPayload(big)).to.include({ kind: 'error', code: 'bad_shape' });
    });
    it('fits the most labels with the longest keys and values within the limit', () => {
      const labels = Object.fromEntries(Array.from({ length: MAX_LABELS }, (_, i) => [`k${String(i).padStart(2, '0')}${'x'.repeat(60)}`, 'é'.repeat(128)]));
      const line = encodeLabelsLine('AbCdEf012345', labels);
      const payload = line.slice('d:AbCdEf012345:'.length);
      expect(payload.length).to.be.at.most(MAX_LABELS_PAYLOAD_BASE64);
      expect(parseLabelsPayload(payload)).to.have.property('kind', 'labels');
    });
    it('turns invalid UTF-8 into U+FFFD rather than an error, as the other payloads do', () => {
      const raw = Buffer.concat([Buffer.from('{"a":"x'), Buffer.from([0xff]), Buffer.from('y"}')]).toString('base64');
      expect(parseLabelsPayload(raw)).to.deep.equal({ kind: 'labels', labels: { a: 'x\ufffdy' } });
    });
  });

  describe('labelsFromJson', () => {
    it('is the shape check alone', () => {
      expect(labelsFromJson({ a: 'b' })).to.deep.equal({ kind: 'labels', labels: { a: 'b' } });
      expect(labelsFromJson([])).to.include({ kind: 'error', code: 'bad_shape' });
    });
  });
});
