/**
 * The PubSub contract (phoenix_pubsub style): channels carry JSON-serialisable messages to every
 * subscriber on every node. Local (one process) and Redis (between daemons) implementations; one
 * contract suite (test/contracts/pubsub.contract.ts) runs against both.
 *
 * Channels used by the domain: `<apiKey>:vars`, `<apiKey>:logs`, `<apiKey>:devices`,
 * `<apiKey>:vars:callback`.
 */
import type { BackendHealth } from '../model.js';

/**
 * A channel's handlers on one node share one decoded copy of each message: read-only (frozen when
 * shared, and always under NODE_ENV=test). A handler that needs to change it copies it first.
 */
export type Handler = (message: unknown, channel: string) => void;
/**
 * A handler for a consumer that forwards messages as JSON text (the dashboards' /ws): a message this
 * process published comes as the very text it was published as, never decoded for it (`own`);
 * another node's is decoded first (a foreign publisher's non-JSON is dropped) and comes as its
 * value, read-only like any handler's.
 */
export type TextHandler = (message: OwnText | OtherValue, channel: string) => void;
export interface OwnText {
  own: true;
  /** What encodeMessage made of the message. */
  text: string;
}
export interface OtherValue {
  own: false;
  value: unknown;
}
export type Unsubscribe = () => Promise<void>;

export interface PubSub {
  readonly kind: 'local' | 'redis';
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): Promise<BackendHealth>;
  /** Resolves once messages published after it resolves will reach the handler. */
  subscribe(channel: string, handler: Handler): Promise<Unsubscribe>;
  /** subscribe, for a handler of the messages' JSON text (TextHandler). */
  subscribeText(channel: string, handler: TextHandler): Promise<Unsubscribe>;
  /**
   * Delivers asynchronously to every subscriber of the channel, in publish order per channel.
   * Resolves with how many nodes had at least one subscriber (Redis: PUBLISH's count of subscribed
   * connections, one per node; local: 1 or 0), so a sender can tell "nobody is listening" at once.
   */
  publish(channel: string, message: unknown): Promise<number>;
}

export const channels = {
  vars: (apiKey: string) => `${apiKey}:vars`,
  logs: (apiKey: string) => `${apiKey}:logs`,
  devices: (apiKey: string) => `${apiKey}:devices`,
  varsCallback: (apiKey: string) => `${apiKey}:vars:callback`,
} as const;
