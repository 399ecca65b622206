/**
 * normalizeLogEntry: whatever a device sends becomes a bounded, well-formed entry both log indexes
 * can store, with what did not fit kept as text rather than dropped.
 */
import { expect } from 'chai';
import type { LogEntry } from '../../../src/model.js';
import { boundedJson, cut, DEFAULT_LOG_LIMITS, MAX_KEY_CHARS, MAX_LEVEL_CHARS, normalizeFields, normalizeLogEntry, OVERFLOW_KEY, wellFormed, type LogLimits } from '../../../src/log-index/normalize.js';

const entry = (over: Partial<LogEntry> = {}): LogEntry => ({
  id: '1-n-1',
  apiKey: 'NORMALIZEKEY',
  deviceId: 'dev',
  level: 'info',
  message: 'hello',
  timestamp: null,
  receivedAt: 1,
  fields: {},
  ...over,
});

function nested(levels: number, leaf: unknown = 1): Record<string, unknown> {
  let v: unknown = leaf;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v as Record<string, unknown>;
}

function depthOf(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  return 1 + Math.max(0, ...Object.values(v).map(depthOf));
}

function keysOf(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  return Object.values(v).reduce<number>((n, x) => n + keysOf(x), Array.isArray(v) ? 0 : Object.keys(v).length);
}

/** What Meilisearch chokes on: a lone surrogate anywhere in the JSON text. */
const LONE = /\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}/i;

const limits: LogLimits = { maxMessageChars: 100, maxFieldsDepth: 4, maxFields: 10, maxFieldsChars: 2000 };

describe('normalizeLogEntry', () => {
  it('leaves an ordinary entry as it is, as a new object', () => {
    const e = entry({ level: 'warn', timestamp: 5, fields: { scene: 'castle', hp: 42, nested: { tags: ['a', 'b'], ok: true, none: null } } });
    const n = normalizeLogEntry(e);
    expect(n).to.deep.equal(e);
    expect(n).not.to.equal(e);
    expect(n.fields).not.to.equal(e.fields);
  });

  describe('depth', () => {
    it('keeps values nested deeper than maxFieldsDepth as their JSON text', () => {
      const n = normalizeLogEntry(entry({ fields: { f: nested(200, 'abyssal') } }), limits);
      expect(depthOf(n.fields)).to.equal(limits.maxFieldsDepth);
      let v: unknown = n.fields.f;
      for (let i = 0; i < limits.maxFieldsDepth - 2; i++) v = (v as Record<string, unknown>).a;
      const text = (v as Record<string, unknown>).a as string;
      expect(text).to.be.a('string');
      expect(JSON.parse(text)).to.deep.equal(nested(200 - limits.maxFieldsDepth + 1, 'abyssal'));
    });

    it('counts arrays as levels too', () => {
      const n = normalizeLogEntry(entry({ fields: { a: [[[[[1]]]]] } }), limits);
      expect(n.fields).to.deep.equal({ a: [[['[[1]]']]] });
    });

    it('cuts the text of a very deep or cyclic value at maxFieldsChars', () => {
      const cyclic: Record<string, unknown> = { name: 'loop' };
      cyclic.self = cyclic;
      const roomy = { ...limits, maxFieldsChars: 20_000 };
      for (const fields of [{ deep: nested(100_000) }, { cyclic }]) {
        const n = normalizeLogEntry(entry({ fields }), roomy);
        expect(JSON.stringify(n.fields).length).to.be.below(roomy.maxFieldsChars + 100);
        expect(LONE.test(JSON.stringify(n.fields))).to.equal(false);
      }
      const deep = normalizeLogEntry(entry({ fields: { deep: nested(100_000) } }), roomy).fields;
      expect(JSON.stringify(deep)).to.match(/^\{"deep":\{"a":\{"a":\{"a":"\{\\"a\\":/);
      const cyc = normalizeLogEntry(entry({ fields: { cyclic } }), roomy).fields;
      expect((cyc.cyclic as Record<string, unknown>).name).to.equal('loop');
    });
  });

  describe('field count', () => {
    it('keeps the first maxFields keys and the rest as JSON text under _overflow', () => {
      const fields = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`k${i}`, i]));
      const n = normalizeLogEntry(entry({ fields }), limits);
      const kept = Object.keys(n.fields).filter((k) => k !== OVERFLOW_KEY);
      expect(kept).to.deep.equal(Array.from({ length: 10 }, (_, i) => `k${i}`));
      expect(JSON.parse(n.fields[OVERFLOW_KEY] as string)).to.deep.equal(Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${i + 10}`, i + 10])));
    });

    it('counts keys at every level', () => {
      const fields = { a: { b: 1, c: 2, d: 3 }, e: { f: { g: 1, h: 2, i: 3, j: 4, k: 5 } } };
      const n = normalizeLogEntry(entry({ fields }), limits);
      expect(keysOf(n.fields) - 2).to.be.at.most(limits.maxFields);
      expect(n.fields).to.deep.equal({ a: { b: 1, c: 2, d: 3 }, e: { f: { g: 1, h: 2, i: 3, j: 4, [OVERFLOW_KEY]: '{"k":5}' } } });
    });

    it('keeps a key longer than MAX_KEY_CHARS in the overflow, with its value', () => {
      const long = 'k'.repeat(MAX_KEY_CHARS + 1);
      const n = normalizeLogEntry(entry({ fields: { [long]: 1, ok: 2 } }));
      expect(n.fields).to.deep.equal({ ok: 2, [OVERFLOW_KEY]: JSON.stringify({ [long]: 1 }) });
    });

    it('is idempotent, overflow included', () => {
      for (const fields of [
        Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`k${i}`, { v: i }])),
        { [OVERFLOW_KEY]: 'sent by the device', ...Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`k${i}`, i])) },
        { big: 'x'.repeat(5000) },
        { f: nested(50) },
      ]) {
        const once = normalizeLogEntry(entry({ fields }), limits);
        expect(normalizeLogEntry(once, limits)).to.deep.equal(once);
      }
    });
  });

  describe('lone surrogates', () => {
    it('replaces them with U+FFFD in message, level, keys and values; keeps pairs', () => {
      const e = entry({ message: 'lone \ud800 surrogate 🎮', level: 'w\udc00rn', fields: { 'k\ud800': 'v\udfff', arr: ['\ud83c', '🎮\udc00'], deep: nested(10, '\udbff') } });
      const n = normalizeLogEntry(e, limits);
      expect(n.message).to.equal('lone \ufffd surrogate 🎮');
      expect(n.level).to.equal('w\ufffdrn');
      expect(n.fields['k\ufffd']).to.equal('v\ufffd');
      expect(n.fields.arr).to.deep.equal(['\ufffd', '🎮\ufffd']);
      expect(LONE.test(JSON.stringify(n))).to.equal(false);
      expect(LONE.test(JSON.stringify(e))).to.equal(true);
    });

    it('wellFormed leaves well-formed strings alone', () => {
      for (const s of ['', 'plain', '🎮日本語', '\ud83c\udfae']) expect(wellFormed(s)).to.equal(s);
      expect(wellFormed('\udc00\ud800')).to.equal('\ufffd\ufffd');
    });
  });

  describe('sizes', () => {
    it('cuts a long message to maxMessageChars, ending in …, never inside a surrogate pair', () => {
      expect(normalizeLogEntry(entry({ message: 'm'.repeat(1000) }), limits).message).to.equal(`${'m'.repeat(99)}…`);
      const emoji = `${'m'.repeat(98)}🎮🎮`;
      const n = normalizeLogEntry(entry({ message: emoji }), limits).message;
      expect(n).to.equal(`${'m'.repeat(98)}…`);
      expect(cut('abc', 3)).to.equal('abc');
    });

    it('caps the level at MAX_LEVEL_CHARS', () => {
      expect(normalizeLogEntry(entry({ level: 'L'.repeat(1000) })).level).to.have.length(MAX_LEVEL_CHARS);
    });

    it('replaces fields larger than maxFieldsChars by their cut JSON text under _overflow', () => {
      const n = normalizeLogEntry(entry({ fields: { big: 'x'.repeat(10_000), small: 1 } }), limits);
      expect(Object.keys(n.fields)).to.deep.equal([OVERFLOW_KEY]);
      const text = n.fields[OVERFLOW_KEY] as string;
      expect(text.startsWith('{"big":"xxx')).to.equal(true);
      expect(text.endsWith('…')).to.equal(true);
      expect(text.length).to.be.at.most(limits.maxFieldsChars);
    });

    it('handles a huge array within the size cap, in time', () => {
      const started = Date.now();
      const n = normalizeLogEntry(entry({ fields: { arr: Array.from({ length: 1_000_000 }, (_, i) => i) } }));
      expect(Date.now() - started).to.be.below(5000);
      expect(JSON.stringify(n.fields).length).to.be.at.most(DEFAULT_LOG_LIMITS.maxFieldsChars + 100);
    });
  });

  describe('hostile input', () => {
    it('keeps __proto__ and constructor keys as plain data and pollutes nothing', () => {
      const fields = JSON.parse('{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"a":{"__proto__":[1]}}') as Record<string, unknown>;
      const n = normalizeLogEntry(entry({ fields }));
      expect(Object.getPrototypeOf(n.fields)).to.equal(Object.prototype);
      expect(Object.keys(n.fields)).to.deep.equal(['__proto__', 'constructor', 'a']);
      expect(JSON.parse(JSON.stringify(n.fields))).to.deep.equal(fields);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      expect((n.fields as { polluted?: unknown }).polluted).to.equal(undefined);
    });

    it('turns values JSON cannot hold into what JSON.stringify would write', () => {
      const n = normalizeFields({ nan: Number.NaN, inf: Number.POSITIVE_INFINITY, big: 10n, fn: () => 1, undef: undefined, date: new Date(0), arr: [undefined, () => 1] });
      expect(n).to.deep.equal({ nan: null, inf: null, big: '10', date: '1970-01-01T00:00:00.000Z', arr: [null, null] });
    });

    it('accepts fields that are not an object, and non-string messages and levels', () => {
      expect(normalizeFields(null)).to.deep.equal({});
      expect(normalizeFields('text')).to.deep.equal({});
      const n = normalizeLogEntry(entry({ message: 42 as unknown as string, level: null as unknown as string, timestamp: Number.NaN }));
      expect(n).to.include({ message: '42', level: 'null', timestamp: null });
    });
  });

  describe('boundedJson', () => {
    it('writes JSON.stringify\'s text for plain data', () => {
      const v = { a: [1, 'two', null, true, { b: 'é🎮' }], c: -0.5 };
      expect(boundedJson(v, 1000)).to.equal(JSON.stringify(v));
    });
    it('stops soon after max characters', () => {
      expect(boundedJson(Array.from({ length: 100_000 }, () => 'word'), 100).length).to.be.below(120);
    });
  });
});
