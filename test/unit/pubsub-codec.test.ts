/**
 * The pubsub codec's origin mark: a per-instance prefix RedisPubSub recognises its own echo by, which
 * every other reader decodes through as if it were not there.
 */
import { expect } from 'chai';
import { decodeMessage, encodeMessage, newOriginMark, ORIGIN_MARK_LENGTH } from '../../src/pubsub/codec.js';

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
