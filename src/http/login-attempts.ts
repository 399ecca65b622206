/**
 * The failed-login limiter as `POST /api/sessions` uses it: the rule of login-limiter.ts kept by the
 * store, so on Redis every node counts one email's guesses together and on the embedded store the
 * in-process limiter does. A store that cannot be asked refuses the attempt (503) rather than let
 * guesses through uncounted.
 */
import type { Logger } from 'pino';
import { ObserverioError } from '../errors.js';
import { loginRule, type LoginOutcome, type LoginRule } from '../store/login-limiter.js';
import type { Store } from '../store/store.js';

export class LoginAttempts {
  readonly rule: LoginRule;

  constructor(
    private readonly store: Pick<Store, 'loginBegin' | 'loginEnd'>,
    private readonly logger: Logger,
    rule: Partial<LoginRule> = {},
  ) {
    this.rule = loginRule(rule);
  }

  /** Null when the attempt may go ahead (end it with fail, succeed or abandon), else ms to wait. */
  async begin(key: string): Promise<number | null> {
    try {
      return await this.store.loginBegin(key, this.rule);
    } catch (err) {
      this.logger.error({ err }, 'cannot check the sign-in limiter');
      throw new ObserverioError('unavailable', 'cannot check sign-in attempts right now; retry');
    }
  }

  fail(key: string): Promise<void> {
    return this.end(key, 'fail');
  }

  succeed(key: string): Promise<void> {
    return this.end(key, 'succeed');
  }

  abandon(key: string): Promise<void> {
    return this.end(key, 'abandon');
  }

  /**
   * Never throws: the sign-in already has its answer. A lost failure costs one uncounted guess, a lost
   * success or abandon an in-flight slot that lapses after attemptTimeoutMs.
   */
  private async end(key: string, outcome: LoginOutcome): Promise<void> {
    try {
      await this.store.loginEnd(key, outcome, this.rule);
    } catch (err) {
      this.logger.warn({ err, outcome }, 'cannot record the end of a sign-in attempt');
    }
  }
}
