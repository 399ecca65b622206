/**
 * Reconnection delays: exponential from `initialMs` by `factor`, never above `maxMs`, spread by
 * ±`jitter` so that a daemon restart is not met by every device reconnecting in the same millisecond.
 */

export interface BackoffOptions {
  /** First delay; default 1000 ms. */
  initialMs: number;
  /** Longest delay, jitter included; default 30000 ms. */
  maxMs: number;
  /** Growth per failed attempt; default 2. */
  factor: number;
  /** Relative spread, 0..1: a delay d becomes uniform in [d·(1-jitter), d·(1+jitter)]; default 0.2. */
  jitter: number;
  /** A connection that stayed up this long resets the delay to initialMs; default 10000 ms. */
  stableMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  initialMs: 1000,
  maxMs: 30_000,
  factor: 2,
  jitter: 0.2,
  stableMs: 10_000,
});

/** Checks and completes backoff options; throws a plain message for the caller to wrap. */
export function backoffOptions(partial: Partial<BackoffOptions> = {}): BackoffOptions {
  const o = { ...DEFAULT_BACKOFF, ...stripUndefined(partial) };
  if (!(o.initialMs > 0)) throw new RangeError('reconnect.initialMs must be > 0');
  if (!(o.maxMs >= o.initialMs)) throw new RangeError('reconnect.maxMs must be >= reconnect.initialMs');
  if (!(o.factor >= 1)) throw new RangeError('reconnect.factor must be >= 1');
  if (!(o.jitter >= 0 && o.jitter <= 1)) throw new RangeError('reconnect.jitter must be within 0..1');
  if (!(o.stableMs >= 0)) throw new RangeError('reconnect.stableMs must be >= 0');
  return o;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export class Backoff {
  private failures = 0;

  constructor(
    private readonly opts: BackoffOptions,
    /** Uniform in [0, 1), injectable so tests can pin the jitter. */
    private readonly random: () => number = Math.random,
  ) {}

  /** Attempts since the last reset. */
  get attempt(): number {
    return this.failures;
  }

  /** The delay before the next attempt; each call counts one more failed attempt. */
  next(): number {
    const { initialMs, maxMs, factor, jitter } = this.opts;
    // Bounded exponent: factor ** failures would overflow to Infinity after ~1000 failures at factor 2.
    const base = Math.min(maxMs, initialMs * factor ** Math.min(this.failures, 64));
    this.failures++;
    const spread = base * jitter * (2 * this.random() - 1);
    return Math.max(0, Math.min(maxMs, Math.round(base + spread)));
  }

  reset(): void {
    this.failures = 0;
  }
}
