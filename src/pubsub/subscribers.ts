/**
 * The in-process side of every PubSub: which handlers listen on which channel, and delivery of one
 * encoded message to them: decoded once, the one copy shared by the handlers (frozen, so none changes
 * what another sees), and a throwing handler logged without keeping the message from the others.
 */
import type { Logger } from 'pino';
import { decodeMessage, deepFreeze } from './codec.js';
import type { Handler, OtherValue, OwnText, TextHandler } from './pubsub.js';

export interface Subscription {
  readonly channel: string;
  readonly handler: Handler;
  /** Set for a handler of the JSON text (subscribeText): `handler` is then never called. */
  readonly onText: TextHandler | null;
  /** Cleared on unsubscribe, so a message already queued for this handler is not delivered. */
  active: boolean;
}

export class Subscribers {
  // Arrays are replaced, never mutated, so a publish can keep a reference as its recipient list
  // without copying it.
  private readonly byChannel = new Map<string, readonly Subscription[]>();

  add(channel: string, handler: Handler | null, onText: TextHandler | null = null): Subscription {
    const sub: Subscription = { channel, handler: handler ?? noHandler, onText, active: true };
    this.byChannel.set(channel, [...(this.byChannel.get(channel) ?? []), sub]);
    return sub;
  }

  /** Removes the subscription (idempotent) and returns how many remain on its channel. */
  remove(sub: Subscription): number {
    sub.active = false;
    const list = this.byChannel.get(sub.channel);
    if (!list) return 0;
    const rest = list.filter((s) => s !== sub);
    if (rest.length === 0) this.byChannel.delete(sub.channel);
    else this.byChannel.set(sub.channel, rest);
    return rest.length;
  }

  of(channel: string): readonly Subscription[] {
    return this.byChannel.get(channel) ?? [];
  }

  count(channel: string): number {
    return this.of(channel).length;
  }

  channels(): string[] {
    return [...this.byChannel.keys()];
  }

  clear(): void {
    for (const list of this.byChannel.values()) for (const sub of list) sub.active = false;
    this.byChannel.clear();
  }
}

/**
 * Under test (NODE_ENV=test, as the suites run) every message is frozen, so a handler that writes to
 * its message fails the tests even where it is its channel's only handler; otherwise only a shared one
 * is (freezing a decoded thousand-override list costs a third of its decoding, for a message nobody
 * else holds).
 */
const FREEZE_ALWAYS = process.env.NODE_ENV === 'test';

const noHandler: Handler = () => undefined;

/**
 * Calls each still-active handler with the message, decoded once and shared by them; never throws.
 * `own`: the text is this process's own encoding (encodeMessage's), handed to text handlers as it is
 * and decoded only if another handler wants the value; any other text is decoded first, and text
 * handlers get that value (TextHandler).
 */
export function deliver(recipients: readonly Subscription[], channel: string, text: string, logger: Logger | undefined, own = false): void {
  let active = 0;
  let values = 0;
  for (const sub of recipients) {
    if (!sub.active) continue;
    active += 1;
    if (!sub.onText) values += 1;
  }
  if (active === 0) return;
  let message: unknown;
  if (values > 0 || !own) {
    try {
      message = decodeMessage(text);
    } catch (err) {
      // Only a foreign publisher on a shared Redis can put non-JSON on our channels.
      logger?.warn({ err, channel, bytes: text.length }, 'pubsub message is not JSON; dropped');
      return;
    }
    if (active > 1 || FREEZE_ALWAYS) deepFreeze(message);
  }
  const forText: OwnText | OtherValue = own ? { own: true, text } : { own: false, value: message };
  for (const sub of recipients) {
    if (!sub.active) continue;
    try {
      const result: unknown = sub.onText ? sub.onText(forText, channel) : sub.handler(message, channel);
      // Handlers are typed as returning void, but an async one would otherwise turn its failure
      // into an unhandled rejection that takes the process down.
      if (result instanceof Promise) result.catch((err: unknown) => logHandlerError(logger, channel, err));
    } catch (err) {
      logHandlerError(logger, channel, err);
    }
  }
}

function logHandlerError(logger: Logger | undefined, channel: string, err: unknown): void {
  logger?.error({ err, channel }, 'pubsub handler threw; other handlers still got the message');
}

/** A published message waiting to reach this process's handlers. */
export interface QueuedDelivery {
  channel: string;
  text: string;
  recipients: readonly Subscription[];
  /** open: deliver; waiting: hold it and everything behind it (Redis: until PUBLISH answers); failed: drop. */
  state: 'open' | 'waiting' | 'failed';
}

/** After this many deliveries in one go, the rest waits for the next turn so I/O is not starved. */
const DELIVERIES_PER_TURN = 10_000;

/**
 * One FIFO for all channels of a PubSub: per-channel publish order follows from it, and a burst of
 * publishes costs one scheduled drain instead of one per message. An item whose state changes from
 * `waiting` is settled by calling `wake()`.
 */
export class DeliveryQueue {
  private queue: (QueuedDelivery | undefined)[] = [];
  private head = 0;
  private draining = false;

  constructor(private readonly logger: Logger | undefined) {}

  push(item: QueuedDelivery): void {
    this.queue.push(item);
    this.wake();
  }

  wake(): void {
    if (this.draining) return;
    this.draining = true;
    queueMicrotask(() => this.drain());
  }

  private drain(): void {
    let budget = DELIVERIES_PER_TURN;
    while (this.head < this.queue.length && budget > 0) {
      const item = this.queue[this.head]!;
      // Waiting (for PUBLISH's answer): so does everything behind it; its settling wakes the queue.
      if (item.state === 'waiting') {
        this.draining = false;
        return;
      }
      // Released at once so a long backlog does not keep delivered messages alive.
      this.queue[this.head++] = undefined;
      if (item.state === 'failed') continue;
      budget -= item.recipients.length;
      // Published by this process: its own encoding.
      deliver(item.recipients, item.channel, item.text, this.logger, true);
    }
    if (this.head >= this.queue.length) {
      this.queue = [];
      this.head = 0;
      this.draining = false;
    } else {
      setImmediate(() => this.drain());
    }
  }
}
