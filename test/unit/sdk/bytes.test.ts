/**
 * bytes.ts: the portable UTF-8 and base64 code the browser bundle runs (no Buffer there) gives what
 * Node's Buffer gives, for ASCII, multi-byte and astral characters, lone surrogates and large texts.
 */
import { expect } from 'chai';
import { base64FromTextPortable, textFromBase64Portable, utf8LengthPortable } from '../../../src/sdk/bytes.js';

const SAMPLES = ['', 'OK', 'héllo wörld', '日本語のテキスト', 'game 🎮 over 👾', 'lone \ud800 high', 'lone \udc00 low', 'end \ud83c', '\u0000\u007f\u0080\u07ff\u0800\uffff', 'x'.repeat(100_000) + '🎮'.repeat(40_000)];

describe('sdk bytes (portable UTF-8 and base64)', () => {
  it('counts UTF-8 bytes as Buffer does', () => {
    for (const s of SAMPLES) expect(utf8LengthPortable(s), JSON.stringify(s.slice(0, 20))).to.equal(Buffer.byteLength(s, 'utf8'));
  });

  it('encodes padded standard base64 as Buffer does, also past one String.fromCharCode chunk', () => {
    for (const s of SAMPLES) expect(base64FromTextPortable(s)).to.equal(Buffer.from(s, 'utf8').toString('base64'));
  });

  it('decodes back to the text (lone surrogates become U+FFFD, as through Buffer)', () => {
    for (const s of SAMPLES) expect(textFromBase64Portable(Buffer.from(s, 'utf8').toString('base64'))).to.equal(Buffer.from(s, 'utf8').toString('utf8'));
    expect(textFromBase64Portable('aGk')).to.equal('hi');
  });

  it('answers null for what atob refuses instead of throwing', () => {
    for (const bad of ['a', 'a===', '@@@@', 'aGk=x']) expect(textFromBase64Portable(bad), bad).to.equal(null);
  });
});
