import { expect } from 'chai';
import { pino } from 'pino';
import { DashboardSockets, WS_CLOSE_SESSION_ENDED, type DashboardSocket } from '../../../src/http/dashboard-sockets.js';
import { SESSIONS_REVOKED_CHANNEL, SessionRevocations } from '../../../src/http/session-revocations.js';
import { SessionCache } from '../../../src/http/auth.js';
import type { Session } from '../../../src/model.js';
import { LocalPubSub } from '../../../src/pubsub/local-pubsub.js';
import type { PubSub } from '../../../src/pubsub/pubsub.js';
import { eventually } from '../../helpers/eventually.js';

const logger = pino({ level: 'silent' });
const TOKEN_A = 'a'.repeat(43);
const TOKEN_B = 'b'.repeat(43);

/** One node: its socket registry and its revocations, on a pubsub shared with the other "nodes". */
function node(pubsub: PubSub, sessionCacheMs?: number) {
  const sockets = new DashboardSockets();
  const revocations = new SessionRevocations({ pubsub, sockets, logger, retryInitialMs: 10, retryMaxMs: 40, sessionCacheMs });
  const ended: Array<[string, number | undefined]> = [];
  const open = (token: string, name: string): DashboardSocket => {
    const ws: DashboardSocket = {
      end(code) {
        ended.push([name, code]);
        sockets.remove(token, ws);
      },
    };
    sockets.add(token, ws);
    return ws;
  };
  return { sockets, revocations, ended, open };
}

describe('SessionRevocations', () => {
  let pubsub: LocalPubSub;
  beforeEach(async () => {
    pubsub = new LocalPubSub({ logger });
    await pubsub.start();
  });
  afterEach(() => pubsub.stop());

  it('revoke closes the session’s sockets on its own node at once and on every other node when the message lands', async () => {
    const a = node(pubsub);
    const b = node(pubsub);
    await Promise.all([a.revocations.start(), b.revocations.start()]);
    a.open(TOKEN_A, 'a1');
    b.open(TOKEN_A, 'b1');
    b.open(TOKEN_B, 'b2');
    const revoked = a.revocations.revoke(TOKEN_A);
    expect(a.ended).to.deep.equal([['a1', WS_CLOSE_SESSION_ENDED]]);
    await revoked;
    await eventually(() => expect(b.ended).to.deep.equal([['b1', WS_CLOSE_SESSION_ENDED]]));
    expect(b.sockets.size).to.equal(1);
    await Promise.all([a.revocations.stop(), b.revocations.stop()]);
  });

  it('drops a revoked token from the session cache of its own node at once and of every node that hears it', async () => {
    const session = (token: string): Session => ({ token, apiKey: 'AbCdEf123456', email: 'me@example.com', expiresAt: Date.now() + 60_000 });
    const a = node(pubsub, 60_000);
    const b = node(pubsub, 60_000);
    await Promise.all([a.revocations.start(), b.revocations.start()]);
    for (const n of [a, b])
      for (const t of [TOKEN_A, TOKEN_B]) n.revocations.sessions.set(t, session(t), Date.now(), n.revocations.sessions.generation);
    const revoked = a.revocations.revoke(TOKEN_A);
    expect(a.revocations.sessions.get(TOKEN_A, Date.now())).to.equal(null);
    await revoked;
    await eventually(() => expect(b.revocations.sessions.get(TOKEN_A, Date.now())).to.equal(null));
    expect(b.revocations.sessions.get(TOKEN_B, Date.now())?.token).to.equal(TOKEN_B);
    // A malformed message drops nothing.
    await pubsub.publish(SESSIONS_REVOKED_CHANNEL, { token: 'short' });
    await pubsub.publish(SESSIONS_REVOKED_CHANNEL, { token: 7 });
    expect(b.revocations.sessions.get(TOKEN_B, Date.now())?.token).to.equal(TOKEN_B);
    await Promise.all([a.revocations.stop(), b.revocations.stop()]);
  });

  it('ignores malformed messages: not an object, no token, a token of the wrong shape or size', async () => {
    const b = node(pubsub);
    await b.revocations.start();
    b.open(TOKEN_A, 'b1');
    for (const m of [null, 'x', 42, [TOKEN_A], {}, { token: 7 }, { token: '../../etc/passwd' }, { token: 'a'.repeat(100_000) }, { token: 'short' }]) {
      await pubsub.publish(SESSIONS_REVOKED_CHANNEL, m);
    }
    await pubsub.publish(SESSIONS_REVOKED_CHANNEL, { token: TOKEN_B });
    await eventually(() => expect(b.sockets.endedSize).to.equal(1));
    expect(b.ended).to.deep.equal([]);
    expect(b.sockets.size).to.equal(1);
    await b.revocations.stop();
  });

  it('stop unsubscribes', async () => {
    const b = node(pubsub);
    await b.revocations.start();
    expect(await pubsub.publish(SESSIONS_REVOKED_CHANNEL, { token: TOKEN_B })).to.equal(1);
    await b.revocations.stop();
    expect(await pubsub.publish(SESSIONS_REVOKED_CHANNEL, { token: TOKEN_B })).to.equal(0);
  });

  it('subscribes again in the background when the pubsub refused at first', async () => {
    let refusals = 2;
    const flaky: PubSub = Object.assign(Object.create(pubsub) as PubSub, {
      subscribe: (channel: string, handler: Parameters<PubSub['subscribe']>[1]) => {
        if (refusals > 0) {
          refusals -= 1;
          return Promise.reject(new Error('pubsub down'));
        }
        return pubsub.subscribe(channel, handler);
      },
    });
    const b = node(flaky);
    await b.revocations.start().catch(() => undefined);
    b.open(TOKEN_A, 'b1');
    await eventually(async () => expect(await pubsub.publish(SESSIONS_REVOKED_CHANNEL, { token: 'z'.repeat(43) })).to.equal(1), { timeoutMs: 2000 });
    await pubsub.publish(SESSIONS_REVOKED_CHANNEL, { token: TOKEN_A });
    await eventually(() => expect(b.ended).to.deep.equal([['b1', WS_CLOSE_SESSION_ENDED]]));
    expect(refusals).to.equal(0);
    await b.revocations.stop();
  });

  it('a publish that fails still closes this node’s sockets and does not throw', async () => {
    const a = node(pubsub);
    a.open(TOKEN_A, 'a1');
    await pubsub.stop();
    await a.revocations.revoke(TOKEN_A);
    expect(a.ended).to.deep.equal([['a1', WS_CLOSE_SESSION_ENDED]]);
  });
});

describe('SessionCache', () => {
  const session = (token: string, expiresAt: number): Session => ({ token, apiKey: 'AbCdEf123456', email: 'me@example.com', expiresAt });
  const T0 = 1_000_000;

  it('answers a session for ttlMs after it was read, never past the session’s own expiry', () => {
    const c = new SessionCache(1000);
    c.set(TOKEN_A, session(TOKEN_A, T0 + 60_000), T0, c.generation);
    c.set(TOKEN_B, session(TOKEN_B, T0 + 500), T0, c.generation);
    expect(c.get(TOKEN_A, T0 + 999)?.token).to.equal(TOKEN_A);
    expect(c.get(TOKEN_A, T0 + 1000)).to.equal(null);
    expect(c.get(TOKEN_B, T0 + 499)?.token).to.equal(TOKEN_B);
    expect(c.get(TOKEN_B, T0 + 500)).to.equal(null);
    expect(c.size).to.equal(0);
  });

  it('holds at most maxEntries, the oldest going first; ttlMs 0 holds nothing', () => {
    const c = new SessionCache(1000, 3);
    const tokens = ['c', 'd', 'e', 'f'].map((x) => x.repeat(43));
    for (const t of tokens) c.set(t, session(t, T0 + 60_000), T0, c.generation);
    expect(c.size).to.equal(3);
    expect(c.get(tokens[0] as string, T0)).to.equal(null);
    expect(tokens.slice(1).map((t) => c.get(t, T0)?.token)).to.deep.equal(tokens.slice(1));
    const off = new SessionCache(0);
    off.set(TOKEN_A, session(TOKEN_A, T0 + 60_000), T0, off.generation);
    expect(off.get(TOKEN_A, T0)).to.equal(null);
  });

  it('a read that started before a drop does not put the dropped session back', () => {
    const c = new SessionCache(1000);
    const before = c.generation;
    c.drop(TOKEN_A);
    c.set(TOKEN_A, session(TOKEN_A, T0 + 60_000), T0, before);
    expect(c.get(TOKEN_A, T0)).to.equal(null);
    c.set(TOKEN_A, session(TOKEN_A, T0 + 60_000), T0, c.generation);
    expect(c.get(TOKEN_A, T0)?.token).to.equal(TOKEN_A);
  });
});
