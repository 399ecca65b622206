/**
 * A subscription a daemon keeps for its whole life (the sign-outs of session-revocations.ts), whatever the
 * pubsub's state when it starts: start() subscribes once, and a failure is retried in the background
 * with a delay doubling up to `retryMaxMs`, since a pubsub down at boot must not stop the daemon.
 */
import type { Logger } from 'pino';
import type { Handler, PubSub, Unsubscribe } from './pubsub.js';

export interface LastingSubscriptionOptions {
  pubsub: PubSub;
  channel: string;
  handler: Handler;
  logger: Logger;
  /** Logged (warn) with the error when a SUBSCRIBE fails, before the retry. */
  failureMessage: string;
  /** First delay before subscribing again after a failure; doubled up to retryMaxMs. Default 500. */
  retryInitialMs?: number;
  /** Default 30 s. */
  retryMaxMs?: number;
  /** Each time the subscription is up (the first start, or a retry that succeeded). */
  onUp?: () => void;
}

export class LastingSubscription {
  private subscription: Promise<Unsubscribe> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryMs: number;
  private stopped = true;

  constructor(private readonly opts: LastingSubscriptionOptions) {
    this.retryMs = opts.retryInitialMs ?? 500;
  }

  /** Subscribes unless already subscribed or subscribing; resolves when up, rejects when this attempt failed (a retry follows). */
  start(): Promise<void> {
    this.stopped = false;
    if (!this.subscription) {
      const o = this.opts;
      const p = o.pubsub.subscribe(o.channel, o.handler);
      this.subscription = p;
      p.then(
        () => {
          if (this.subscription !== p) return;
          this.retryMs = o.retryInitialMs ?? 500;
          o.onUp?.();
        },
        (err: unknown) => {
          if (this.subscription !== p) return;
          this.subscription = null;
          o.logger.warn({ err, channel: o.channel, retryInMs: this.retryMs }, o.failureMessage);
          this.scheduleRetry();
        },
      );
    }
    return this.subscription.then(() => undefined);
  }

  /** Unsubscribes, and no retry follows. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const sub = this.subscription;
    this.subscription = null;
    if (sub) await (await sub.catch(() => null))?.();
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.start().catch(() => undefined);
    }, this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(this.retryMs * 2, this.opts.retryMaxMs ?? 30_000);
  }
}
