import { expect } from 'chai';
import { pino } from 'pino';
import { DashboardSockets, WS_CLOSE_SESSION_ENDED, type DashboardSocket } from '../../../src/http/dashboard-sockets.js';
import { SESSIONS_REVOKED_CHANNEL, SessionRevocations } from '../../../src/http/session-revocations.js';
import { LocalPubSub } from '../../../src/pubsub/local-pubsub.js';
import type { PubSub } from '../../../src/pubsub/pubsub.js';
import { eventually } from '../../helpers/eventually.js';

const logger = pino({ level: 'silent' });
const TOKEN_A = 'a'.repeat(43);
const TOKEN_B = 'b'.repeat(43);

/** One node: its socket registry and its revocations, on a pubsub shared with the other "nodes". */
function node(pubsub: PubSub) {
  const sockets = new DashboardSockets();
  const revocations = new SessionRevocations({ pubsub, sockets, logger, retryInitialMs: 10, retryMaxMs: 40 });
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
