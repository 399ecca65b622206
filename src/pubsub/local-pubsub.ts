/**
 * The embedded PubSub: channels inside one process, for a daemon running alone. Messages go through
 * the same JSON encoding as on Redis, so code that works here works between nodes.
 */
import type { Logger } from 'pino';
import type { BackendHealth } from '../model.js';
import { encodeMessage } from './codec.js';
import type { Handler, PubSub, TextHandler, Unsubscribe } from './pubsub.js';
import { DeliveryQueue, Subscribers } from './subscribers.js';

export class LocalPubSub implements PubSub {
  readonly kind = 'local' as const;
  private readonly logger: Logger | undefined;
  private readonly subscribers = new Subscribers();
  private readonly queue: DeliveryQueue;
  private stopped = false;

  constructor(opts: { logger?: Logger } = {}) {
    this.logger = opts.logger;
    this.queue = new DeliveryQueue(this.logger);
  }

  async start(): Promise<void> {
    this.stopped = false;
  }

  /**
   * Refuses new publishes and subscriptions until the next start(). Subscribers and messages already
   * published are kept: a restart of the pubsub worker must lose neither (there is no connection here
   * to close).
   */
  async stop(): Promise<void> {
    this.stopped = true;
  }

  async health(): Promise<BackendHealth> {
    return this.stopped ? { ok: false, kind: this.kind, detail: 'stopped' } : { ok: true, kind: this.kind };
  }

  subscribe(channel: string, handler: Handler): Promise<Unsubscribe> {
    return this.add(channel, handler, null);
  }

  subscribeText(channel: string, handler: TextHandler): Promise<Unsubscribe> {
    return this.add(channel, null, handler);
  }

  private async add(channel: string, handler: Handler | null, onText: TextHandler | null): Promise<Unsubscribe> {
    if (this.stopped) throw new Error(`pubsub is stopped; cannot subscribe to ${channel}`);
    const sub = this.subscribers.add(channel, handler, onText);
    return async () => {
      this.subscribers.remove(sub);
    };
  }

  async publish(channel: string, message: unknown): Promise<number> {
    if (this.stopped) throw new Error(`pubsub is stopped; cannot publish on ${channel}`);
    const text = encodeMessage(channel, message);
    // Recipients are fixed now, as Redis fixes them when it receives the PUBLISH: a handler
    // subscribing after this call does not get this message.
    const recipients = this.subscribers.of(channel);
    if (recipients.length === 0) return 0;
    this.queue.push({ channel, text, recipients, state: 'open' });
    return 1;
  }
}
