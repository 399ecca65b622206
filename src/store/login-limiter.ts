/**
 * The failed-login rule (`POST /api/sessions`) and its in-process implementation. The embedded store
 * keeps one of these; the Redis store runs the same rule in a Lua script (redis-store.ts LOGIN), so
 * guesses spread over several daemons count as one. The store contract runs one suite against both.
 */

export interface LoginRule {
  /** Failed logins for one email within `windowMs` before attempts are refused. */
  maxFailures: number;
  windowMs: number;
  /** First lockout; each further failure doubles it, up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * An attempt still in flight after this long is forgotten: on Redis, a node that died between
   * begin and its answer must not hold the email's in-flight slot for good.
   */
  attemptTimeoutMs: number;
}

export const LOGIN_RULE_DEFAULTS: Readonly<LoginRule> = Object.freeze({
  maxFailures: 5,
  windowMs: 15 * 60_000,
  baseDelayMs: 1000,
  maxDelayMs: 15 * 60_000,
  attemptTimeoutMs: 60_000,
});

/** How a begun attempt ended: a wrong password, the right one, or no answer (the store failed). */
export type LoginOutcome = 'fail' | 'succeed' | 'abandon';

/** Failures past the limit kept per email: the lockout stops doubling long before (2^30, and maxDelayMs). */
export const LOGIN_MAX_KEPT_FAILURES_OVER = 32;

/** The rule with its defaults, checked once (a bad rule would silently never lock). */
export function loginRule(opts: Partial<LoginRule> = {}): LoginRule {
  const rule: LoginRule = { ...LOGIN_RULE_DEFAULTS, ...opts };
  for (const [k, v] of Object.entries(rule)) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`login rule ${k} must be a positive integer, got ${String(v)}`);
  }
  return rule;
}

export interface LoginLimiterOptions extends Partial<LoginRule> {
  /** Emails tracked at once; the least recently seen is forgotten first. */
  maxEntries?: number;
  now?: () => number;
}

interface Attempts {
  /** Times of failed logins within the window, oldest first. */
  failures: number[];
  lockedUntil: number;
  /** Start times of attempts in flight, oldest first. */
  inFlight: number[];
}

/**
 * Per-email failed-login limiter: after `maxFailures` failures within `windowMs`, further attempts
 * are refused until a lockout ends, and each failure after that doubles the lockout. Attempts in
 * flight count too, so parallel guesses cannot slip past the limit before their failures land.
 * Memory is bounded by `maxEntries`. Each call may pass its own rule (the store's callers do); the
 * constructor's is the default.
 */
export class LoginLimiter {
  private readonly entries = new Map<string, Attempts>();
  private readonly rule: LoginRule;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(opts: LoginLimiterOptions = {}) {
    const { maxEntries, now, ...rule } = opts;
    this.rule = loginRule(rule);
    this.maxEntries = maxEntries ?? 50_000;
    this.now = now ?? Date.now;
  }

  /** Starts an attempt: null when it may go ahead (then call fail, succeed or abandon), else ms to wait. */
  begin(email: string, rule: LoginRule = this.rule): number | null {
    const now = this.now();
    const e = this.touch(email, now, rule);
    if (e.lockedUntil > now) return e.lockedUntil - now;
    if (e.failures.length + e.inFlight.length >= rule.maxFailures && e.inFlight.length > 0) return Math.min(rule.baseDelayMs, rule.windowMs);
    e.inFlight.push(now);
    return null;
  }

  fail(email: string, rule: LoginRule = this.rule): void {
    const now = this.now();
    const e = this.touch(email, now, rule);
    e.inFlight.shift();
    e.failures.push(now);
    if (e.failures.length > rule.maxFailures + LOGIN_MAX_KEPT_FAILURES_OVER) e.failures.shift();
    const over = e.failures.length - rule.maxFailures;
    if (over >= 0) e.lockedUntil = now + Math.min(rule.maxDelayMs, rule.baseDelayMs * 2 ** Math.min(over, 30));
  }

  succeed(email: string): void {
    this.entries.delete(email);
  }

  /** An attempt that ended without an answer (e.g. the store failed): neither a failure nor a success. */
  abandon(email: string): void {
    this.entries.get(email)?.inFlight.shift();
  }

  /** Ends a begun attempt. */
  end(email: string, outcome: LoginOutcome, rule: LoginRule = this.rule): void {
    if (outcome === 'fail') this.fail(email, rule);
    else if (outcome === 'succeed') this.succeed(email);
    else this.abandon(email);
  }

  get size(): number {
    return this.entries.size;
  }

  private touch(email: string, now: number, rule: LoginRule): Attempts {
    let e = this.entries.get(email);
    if (e) {
      // Re-inserted so Map order is least recently seen first, which is what eviction drops.
      this.entries.delete(email);
      dropUpTo(e.failures, now - rule.windowMs);
      dropUpTo(e.inFlight, now - rule.attemptTimeoutMs);
    } else {
      e = { failures: [], lockedUntil: 0, inFlight: [] };
      while (this.entries.size >= this.maxEntries) {
        const oldest = this.entries.keys().next().value;
        if (oldest === undefined) break;
        this.entries.delete(oldest);
      }
    }
    this.entries.set(email, e);
    return e;
  }
}

/** Drops the leading times at or before `horizon` (the list is oldest first). */
function dropUpTo(times: number[], horizon: number): void {
  while (times.length > 0 && (times[0] as number) <= horizon) times.shift();
}
