/**
 * Restart backoff for one child: how long its next restart waits. A crash after a stable run is
 * restarted at once (a one-off crash costs nothing); each further crash in a row waits initialMs,
 * doubling each time with ±20% jitter (so a crowd of children crashing together spreads out), at
 * most maxMs. Stable means: running resetAfterMs since the latest restart was due.
 */
import type { BackoffFlags } from './types.js';

/** ±20%: wide enough to spread out children that crash together, narrow enough to stay predictable. */
export const JITTER = 0.2;

export class RestartBackoff {
  /** Crashes in a row so far, counting the one being restarted. */
  private streak = 0;
  private delay = 0;
  /** When the latest restart was due (crash time + its delay). */
  private readyAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly flags: Required<BackoffFlags>,
    private readonly now: () => number,
    private readonly random: () => number = Math.random,
  ) {}

  /** Records a crash that will be restarted; returns the delay in ms before that restart. */
  next(): number {
    const t = this.now();
    if (t - this.readyAt >= this.flags.resetAfterMs) this.streak = 0;
    this.delay = this.streak === 0 ? 0 : this.jittered(this.streak - 1);
    this.streak += 1;
    this.readyAt = t + this.delay;
    return this.delay;
  }

  /** The delay in force: that of the latest restart, until the child has been stable; else 0. */
  current(): number {
    return this.now() - this.readyAt >= this.flags.resetAfterMs ? 0 : this.delay;
  }

  /** initialMs × 2^doublings, jittered, never above maxMs. */
  private jittered(doublings: number): number {
    const { initialMs, maxMs } = this.flags;
    // 2^31 × initialMs is far past any maxMs; the bound keeps the arithmetic finite.
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(doublings, 31));
    const factor = 1 + JITTER * (2 * this.random() - 1);
    return Math.min(maxMs, Math.max(1, Math.round(base * factor)));
  }
}
