import { expect } from 'chai';
import { pino } from 'pino';
import { ObserverioError } from '../../../src/errors.js';
import { LoginAttempts } from '../../../src/http/login-attempts.js';
import type { LoginOutcome, LoginRule } from '../../../src/store/login-limiter.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { contractStoreConfig } from '../../contracts/store.contract.js';

const logger = pino({ level: 'silent' });

describe('LoginAttempts', () => {
  it('runs the rule through the store it is given (the embedded store’s in-process limiter)', async () => {
    const store = new MemoryStore(contractStoreConfig, { dataDir: null });
    const attempts = new LoginAttempts(store, logger, { maxFailures: 2 });
    for (let i = 0; i < 2; i++) {
      expect(await attempts.begin('a@x')).to.equal(null);
      await attempts.fail('a@x');
    }
    // The answer is the lockout still to run, in ms: 1000 less what the real clock moved since the failure.
    expect(await attempts.begin('a@x')).to.be.within(900, 1000);
    expect(await attempts.begin('b@x')).to.equal(null);
    await attempts.succeed('b@x');
  });

  it('answers unavailable when the store cannot be asked, rather than let an uncounted guess through', async () => {
    const attempts = new LoginAttempts(
      {
        loginBegin: () => Promise.reject(new Error('redis down')),
        loginEnd: () => Promise.resolve(),
      },
      logger,
    );
    const err = await attempts.begin('a@x').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ObserverioError);
    expect((err as ObserverioError).code).to.equal('unavailable');
  });

  it('never throws when ending an attempt fails: the sign-in already has its answer', async () => {
    const seen: LoginOutcome[] = [];
    const attempts = new LoginAttempts(
      {
        loginBegin: () => Promise.resolve(null),
        loginEnd: (_k: string, outcome: LoginOutcome, _r: LoginRule) => {
          seen.push(outcome);
          return Promise.reject(new Error('redis down'));
        },
      },
      logger,
    );
    await attempts.fail('a@x');
    await attempts.succeed('a@x');
    await attempts.abandon('a@x');
    expect(seen).to.deep.equal(['fail', 'succeed', 'abandon']);
  });

  it('refuses a rule that would never lock', () => {
    const store = new MemoryStore(contractStoreConfig, { dataDir: null });
    expect(() => new LoginAttempts(store, logger, { maxFailures: 0 })).to.throw(RangeError);
  });
});
