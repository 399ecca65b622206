import { expect } from 'chai';
import { LineFramer, type FrameEvent } from '../../../src/tcp/line-framer.js';

const lines = (evs: FrameEvent[]) => evs.map((e) => (e.kind === 'line' ? e.line : `<${e.kind}>`));

describe('tcp/line-framer', () => {
  describe('push', () => {
    it('splits several lines in one chunk and trims white space and \\r', () => {
      const f = new LineFramer(100);
      expect(lines(f.push(Buffer.from('a\n  b \r\n\n\r\nc\n')))).to.deep.equal(['a', 'b', 'c']);
    });
    it('joins a line split across chunks', () => {
      const f = new LineFramer(100);
      expect(f.push(Buffer.from('v:ABC'))).to.deep.equal([]);
      expect(f.buffered).to.equal(5);
      expect(lines(f.push(Buffer.from('DEF\ni:')))).to.deep.equal(['v:ABCDEF']);
      expect(lines(f.push(Buffer.from('x\n')))).to.deep.equal(['i:x']);
      expect(f.buffered).to.equal(0);
    });
    it('decodes UTF-8 split inside a character', () => {
      const f = new LineFramer(100);
      const bytes = Buffer.from('héllo\n');
      expect(f.push(bytes.subarray(0, 2))).to.deep.equal([]);
      expect(lines(f.push(bytes.subarray(2)))).to.deep.equal(['héllo']);
    });
    it('reports a line over the limit once, skips to its newline, and carries on', () => {
      const f = new LineFramer(10);
      expect(lines(f.push(Buffer.from('0123456789ABC\nok\n')))).to.deep.equal(['<too_long>', 'ok']);
      expect(lines(f.push(Buffer.from('0123456')))).to.deep.equal([]);
      expect(lines(f.push(Buffer.from('789ABCDEF')))).to.deep.equal(['<too_long>']);
      expect(lines(f.push(Buffer.from('more junk\nnext\n')))).to.deep.equal(['next']);
    });
    it('accepts a line of exactly the limit', () => {
      const f = new LineFramer(10);
      expect(lines(f.push(Buffer.from('0123456789\n')))).to.deep.equal(['0123456789']);
    });
    it('reports a line that never ends as a runaway', () => {
      const f = new LineFramer(10, 50);
      const out: FrameEvent[] = [];
      for (let i = 0; i < 10; i++) f.push(Buffer.alloc(10, 65), out);
      expect(lines(out)).to.include('<too_long>').and.include('<runaway>');
    });
    it('never holds more than the limit', () => {
      const f = new LineFramer(1024);
      for (let i = 0; i < 100; i++) f.push(Buffer.alloc(500, 66));
      expect(f.buffered).to.be.at.most(1024);
    });
  });
});
