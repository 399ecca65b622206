import { expect } from 'chai';
import { Backoff, DEFAULT_BACKOFF, backoffOptions } from '../../../src/sdk/backoff.js';

const take = (b: Backoff, n: number): number[] => Array.from({ length: n }, () => b.next());

describe('sdk Backoff', () => {
  it('doubles from 1 s and caps at 30 s by default (no jitter at random = 0.5)', () => {
    const b = new Backoff(backoffOptions(), () => 0.5);
    expect(DEFAULT_BACKOFF).to.include({ initialMs: 1000, maxMs: 30_000, factor: 2, jitter: 0.2, stableMs: 10_000 });
    expect(take(b, 8)).to.deep.equal([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(b.attempt).to.equal(8);
  });

  it('starts again from initialMs after reset()', () => {
    const b = new Backoff(backoffOptions({ initialMs: 100, maxMs: 1000, factor: 3 }), () => 0.5);
    expect(take(b, 4)).to.deep.equal([100, 300, 900, 1000]);
    b.reset();
    expect(b.attempt).to.equal(0);
    expect(take(b, 2)).to.deep.equal([100, 300]);
  });

  it('spreads each delay by ±jitter and never beyond maxMs', () => {
    const low = new Backoff(backoffOptions(), () => 0);
    expect(take(low, 6)).to.deep.equal([800, 1600, 3200, 6400, 12800, 24000]);
    const high = new Backoff(backoffOptions(), () => 0.999999);
    expect(take(high, 6)).to.deep.equal([1200, 2400, 4800, 9600, 19200, 30000]);
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const b = new Backoff(backoffOptions({ jitter: 0.5 }), rnd);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      if (i % 5 === 0) b.reset();
      const base = Math.min(30_000, 1000 * 2 ** (i % 5));
      const d = b.next();
      seen.add(d);
      expect(d).to.be.within(base * 0.5, Math.min(30_000, base * 1.5));
    }
    expect(seen.size).to.be.greaterThan(100);
  });

  it('stays finite after very many failures', () => {
    const b = new Backoff(backoffOptions(), () => 0.5);
    for (let i = 0; i < 5000; i++) b.next();
    expect(b.next()).to.equal(30_000);
  });

  it('rejects nonsense options', () => {
    expect(() => backoffOptions({ initialMs: 0 })).to.throw(RangeError);
    expect(() => backoffOptions({ initialMs: 500, maxMs: 100 })).to.throw(RangeError);
    expect(() => backoffOptions({ factor: 0.5 })).to.throw(RangeError);
    expect(() => backoffOptions({ jitter: 2 })).to.throw(RangeError);
    expect(backoffOptions({ initialMs: undefined }).initialMs).to.equal(1000);
  });
});
