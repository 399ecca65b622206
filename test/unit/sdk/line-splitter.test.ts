import { expect } from 'chai';
import { LineSplitter, splitMessage, type SplitEvent } from '../../../src/sdk/line-splitter.js';

const lines = (events: SplitEvent[]): string[] => events.map((e) => (e.kind === 'line' ? e.line : `<${e.kind}:${e.bytes}>`));

describe('sdk LineSplitter', () => {
  it('splits several lines in one chunk and trims \\r\\n', () => {
    const s = new LineSplitter(100);
    expect(lines(s.push(Buffer.from('OK\r\nv:a\n\n  \r\ne:x:y\r\n')))).to.deep.equal(['OK', 'v:a', 'e:x:y']);
    expect(s.buffered).to.equal(0);
  });

  it('joins a line split across chunks, even inside a UTF-8 character and between \\r and \\n', () => {
    const s = new LineSplitter(100);
    const bytes = Buffer.from('héllo 🎮\r\nnext\n');
    const out: string[] = [];
    for (let i = 0; i < bytes.length; i++) out.push(...lines(s.push(bytes.subarray(i, i + 1))));
    expect(out).to.deep.equal(['héllo 🎮', 'next']);
  });

  it('reports a line over the limit once, skips it to its newline and goes on', () => {
    const s = new LineSplitter(8);
    expect(lines(s.push(Buffer.from('12345')))).to.deep.equal([]);
    expect(lines(s.push(Buffer.from('67890')))).to.deep.equal(['<too_long:10>']);
    expect(s.buffered).to.equal(0);
    expect(lines(s.push(Buffer.from('x'.repeat(1000))))).to.deep.equal([]);
    expect(s.buffered).to.equal(0);
    expect(lines(s.push(Buffer.from('yyy\nOK\n')))).to.deep.equal(['OK']);
  });

  it('reports a complete over-long line and keeps the next one', () => {
    const s = new LineSplitter(4);
    expect(lines(s.push(Buffer.from('123456\nOK\n')))).to.deep.equal(['<too_long:6>', 'OK']);
  });

  it('keeps a line of exactly the limit', () => {
    const s = new LineSplitter(4);
    expect(lines(s.push(Buffer.from('12')))).to.deep.equal([]);
    expect(lines(s.push(Buffer.from('34\n')))).to.deep.equal(['1234']);
  });

  it('copies held bytes, so a reused chunk buffer cannot corrupt them', () => {
    const s = new LineSplitter(100);
    const chunk = Buffer.from('abc');
    s.push(chunk);
    chunk.write('XYZ');
    expect(lines(s.push(Buffer.from('\n')))).to.deep.equal(['abc']);
  });
});

describe('sdk splitMessage (one WebSocket message)', () => {
  it('splits a message into trimmed lines, drops blank ones, and ends the last line at the message end', () => {
    expect(lines(splitMessage('OK\r\nv:a\n\n  \r\ne:x:y', 100))).to.deep.equal(['OK', 'v:a', 'e:x:y']);
    expect(lines(splitMessage('OK\n', 100))).to.deep.equal(['OK']);
    expect(lines(splitMessage('', 100))).to.deep.equal([]);
    expect(lines(splitMessage('\n\n', 100))).to.deep.equal([]);
  });

  it('reports a line over the limit in UTF-8 bytes, not characters, and keeps the other lines', () => {
    // 6 UTF-16 units, 10 bytes.
    expect(lines(splitMessage('a🎮🎮b\nOK', 9))).to.deep.equal(['<too_long:10>', 'OK']);
    expect(lines(splitMessage('ab🎮\nOK', 8))).to.deep.equal(['ab🎮', 'OK']);
    expect(lines(splitMessage(`${'x'.repeat(5000)}\nOK\n${'y'.repeat(9)}`, 8))).to.deep.equal(['<too_long:5000>', 'OK', '<too_long:9>']);
  });
});
