/**
 * The pubsub codec's origin mark: a per-instance prefix RedisPubSub recognises its own echo by, which
 * every other reader decodes through as if it were not there.
 */
import { expect } from 'chai';
import { decodeMessage, deepFreeze, encodeMessage, newOriginMark, ORIGIN_MARK_LENGTH } from '../../src/pubsub/codec.js';

describe('pubsub codec: origin mark', () => {
  it('is 32 characters of JSON whitespace only', () => {
    const mark = newOriginMark();
    expect(ORIGIN_MARK_LENGTH).to.equal(32);
    expect(mark).to.match(/^[ \t\n\r]{32}$/);
  });

  it('differs between instances (64 random bits)', () => {
    const marks = new Set(Array.from({ length: 1000 }, () => newOriginMark()));
    expect(marks.size).to.equal(1000);
  });

  it('leaves a marked payload decodable as it is, by a reader that knows nothing of marks', () => {
    const message = { name: 'speed', value: '-1', list: [1, 'ünï🎮', null] };
    for (const text of [encodeMessage('K:vars', message), encodeMessage('K:vars', 'str'), encodeMessage('K:vars', 7)]) {
      expect(decodeMessage(newOriginMark() + text)).to.deep.equal(decodeMessage(text));
    }
  });

  it('alone is not a message: decoding it throws (the subscriber logs and drops it)', () => {
    expect(() => decodeMessage(newOriginMark())).to.throw(SyntaxError);
  });
});

describe('pubsub codec: deepFreeze (the shared decoded copy)', () => {
  it('freezes every object and array of a decoded message, and leaves primitives as they are', () => {
    const m = deepFreeze(decodeMessage('{"a":{"b":[1,{"c":"d"},[2,[3]]]},"e":null,"f":"g"}')) as { a: { b: [number, { c: string }, [number, number[]]] } };
    expect(Object.isFrozen(m)).to.equal(true);
    expect(Object.isFrozen(m.a)).to.equal(true);
    expect(Object.isFrozen(m.a.b)).to.equal(true);
    expect(Object.isFrozen(m.a.b[1])).to.equal(true);
    expect(Object.isFrozen(m.a.b[2][1])).to.equal(true);
    expect(() => ((m.a.b[1] as { c: string }).c = 'x')).to.throw(TypeError);
    expect(() => m.a.b[2][1].push(4)).to.throw(TypeError);
    for (const p of [1, 'x', null, true]) expect(deepFreeze(p)).to.equal(p);
  });

  it('takes JSON nested deeper than the stack allows recursion (a hostile foreign publisher)', () => {
    const depth = 200_000;
    const m = deepFreeze(decodeMessage('['.repeat(depth) + ']'.repeat(depth)));
    let x = m as unknown[];
    let n = 0;
    while (x.length > 0) {
      expect(Object.isFrozen(x)).to.equal(true);
      x = x[0] as unknown[];
      n += 1;
    }
    expect(n).to.equal(depth - 1);
  });
});
