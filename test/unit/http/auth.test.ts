import { expect } from 'chai';
import { LoginLimiter } from '../../../src/http/auth.js';
import { loginRule } from '../../../src/store/login-limiter.js';

describe('LoginLimiter', () => {
  let now: number;
  const limiter = (opts: ConstructorParameters<typeof LoginLimiter>[0] = {}) => new LoginLimiter({ now: () => now, ...opts });
  const failOnce = (l: LoginLimiter, email: string) => {
    expect(l.begin(email)).to.equal(null);
    l.fail(email);
  };

  beforeEach(() => {
    now = 1_000_000;
  });

  it('lets 5 failures through, then refuses with the lockout left', () => {
    const l = limiter();
    for (let i = 0; i < 5; i++) failOnce(l, 'a@x');
    expect(l.begin('a@x')).to.equal(1000);
    now += 400;
    expect(l.begin('a@x')).to.equal(600);
    expect(l.begin('b@x')).to.equal(null);
  });

  it('doubles the lockout with each further failure, up to the maximum', () => {
    const l = limiter({ maxDelayMs: 5000 });
    for (let i = 0; i < 5; i++) failOnce(l, 'a@x');
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      const w = l.begin('a@x') as number;
      waits.push(w);
      now += w;
      failOnce(l, 'a@x');
    }
    expect(waits).to.deep.equal([1000, 2000, 4000, 5000, 5000]);
  });

  it('forgets failures older than the window', () => {
    const l = limiter({ windowMs: 60_000 });
    for (let i = 0; i < 4; i++) failOnce(l, 'a@x');
    now += 60_001;
    for (let i = 0; i < 4; i++) failOnce(l, 'a@x');
    expect(l.begin('a@x')).to.equal(null);
  });

  it('a success clears the email’s record', () => {
    const l = limiter();
    for (let i = 0; i < 4; i++) failOnce(l, 'a@x');
    expect(l.begin('a@x')).to.equal(null);
    l.succeed('a@x');
    for (let i = 0; i < 4; i++) failOnce(l, 'a@x');
    expect(l.begin('a@x')).to.equal(null);
  });

  it('counts attempts in flight, so parallel guesses stop at the limit', () => {
    const l = limiter();
    const admitted = Array.from({ length: 10 }, () => l.begin('a@x')).filter((w) => w === null).length;
    expect(admitted).to.equal(5);
    l.abandon('a@x');
    expect(l.begin('a@x')).to.equal(null);
  });

  it('keeps at most maxEntries emails, forgetting the least recently seen', () => {
    const l = limiter({ maxEntries: 3 });
    for (const e of ['a', 'b', 'c']) failOnce(l, e);
    failOnce(l, 'a');
    failOnce(l, 'd');
    expect(l.size).to.equal(3);
    // 'b' was the least recently seen: its failure is gone, 'a' kept both of its.
    for (let i = 0; i < 4; i++) failOnce(l, 'b');
    expect(l.begin('b')).to.equal(null);
  });

  it('stays within its default bound under a flood of distinct (and very long) emails', () => {
    const l = limiter();
    const pad = 'x'.repeat(200);
    for (let i = 0; i < 60_000; i++) {
      l.begin(`${i}-${pad}@example.com`);
      l.fail(`${i}-${pad}@example.com`);
    }
    expect(l.size).to.equal(50_000);
  });

  it('takes a rule per call, e.g. the store’s callers’ own', () => {
    const l = limiter();
    const strict = loginRule({ maxFailures: 1, baseDelayMs: 7000 });
    expect(l.begin('a@x', strict)).to.equal(null);
    l.fail('a@x', strict);
    expect(l.begin('a@x', strict)).to.equal(7000);
  });

  it('forgets an attempt in flight after attemptTimeoutMs', () => {
    const l = limiter({ maxFailures: 1, attemptTimeoutMs: 100 });
    expect(l.begin('a@x')).to.equal(null);
    expect(l.begin('a@x')).to.equal(1000);
    now += 101;
    expect(l.begin('a@x')).to.equal(null);
  });

  it('refuses a rule that would never lock', () => {
    expect(() => loginRule({ maxFailures: 0 })).to.throw(RangeError, /maxFailures/);
    expect(() => loginRule({ windowMs: Number.NaN })).to.throw(RangeError, /windowMs/);
    expect(() => new LoginLimiter({ baseDelayMs: -1 })).to.throw(RangeError, /baseDelayMs/);
  });
});
