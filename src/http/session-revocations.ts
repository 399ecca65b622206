/**
 * Sign-out across the cluster (DESIGN.md §6): the node that deletes a session closes that session's
 * dashboard sockets at once and publishes the token on `observerio:sessions:revoked`; every node,
 * itself included, closes the token's sockets it holds when the message arrives. Pubsub is
 * at-most-once, so a node whose subscriber connection is down misses the message: its sockets of
 * that session keep streaming until expiry, and it accepts the token (requests and set_var) for up
 * to `http.sessionCacheMs` after it last read it from the store (its SessionCache, auth.ts); past
 * that it reads the store again, which no longer has the session.
 */
import type { Logger } from 'pino';
import { LastingSubscription } from '../pubsub/lasting-subscription.js';
import type { PubSub } from '../pubsub/pubsub.js';
import { SessionCache, TOKEN_RE } from './auth.js';
import type { DashboardSockets } from './dashboard-sockets.js';

export const SESSIONS_REVOKED_CHANNEL = 'observerio:sessions:revoked';

/** The message on SESSIONS_REVOKED_CHANNEL. */
export interface SessionRevoked {
  token: string;
}

export interface SessionRevocationsDeps {
  pubsub: PubSub;
  sockets: DashboardSockets;
  logger: Logger;
  /** First delay before subscribing again after a failure; doubled up to retryMaxMs. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** How long this node answers a session from memory (http.sessionCacheMs); 0 or absent: never. */
  sessionCacheMs?: number;
  /** Sessions the cache holds at most. */
  sessionCacheEntries?: number;
}

export class SessionRevocations {
  private readonly subscription: LastingSubscription;
  /** The sessions this node read lately; a sign-out drops its token here at once (see SessionCache). */
  readonly sessions: SessionCache;

  constructor(private readonly deps: SessionRevocationsDeps) {
    this.sessions = new SessionCache(deps.sessionCacheMs ?? 0, deps.sessionCacheEntries);
    this.subscription = new LastingSubscription({
      pubsub: deps.pubsub,
      channel: SESSIONS_REVOKED_CHANNEL,
      handler: (m) => this.onMessage(m),
      logger: deps.logger,
      failureMessage: 'cannot subscribe to sign-outs; retrying',
      retryInitialMs: deps.retryInitialMs,
      retryMaxMs: deps.retryMaxMs,
    });
  }

  /**
   * Subscribes (once; the HTTP worker calls it as it starts, before it listens). A failure is retried
   * in the background: a pubsub down at boot must not stop the daemon.
   */
  start(): Promise<void> {
    return this.subscription.start();
  }

  stop(): Promise<void> {
    return this.subscription.stop();
  }

  /**
   * Closes the session's sockets here and tells every other node. Call after the session is gone from
   * the store. Never throws: the sign-out has happened; a lost message is logged.
   */
  async revoke(token: string): Promise<void> {
    this.sessions.drop(token);
    this.deps.sockets.closeSession(token);
    try {
      await this.deps.pubsub.publish(SESSIONS_REVOKED_CHANNEL, { token } satisfies SessionRevoked);
    } catch (err) {
      this.deps.logger.error({ err }, 'cannot tell other nodes of a sign-out; their sockets of that session stay open until it expires');
    }
  }

  private onMessage(message: unknown): void {
    const token = typeof message === 'object' && message !== null ? (message as { token?: unknown }).token : undefined;
    // Only a foreign publisher on a shared Redis can send anything else; never log the token itself.
    if (typeof token !== 'string' || !TOKEN_RE.test(token)) {
      this.deps.logger.warn({ channel: SESSIONS_REVOKED_CHANNEL }, 'malformed sign-out message ignored');
      return;
    }
    this.sessions.drop(token);
    this.deps.sockets.closeSession(token);
  }
}
