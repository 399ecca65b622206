/**
 * DESIGN.md §6 for sessions: on two daemons sharing one private Redis, a sign-out on one node closes
 * that session's WebSockets on the other (4401) and the token is refused everywhere, and the
 * failed-login limiter counts guesses spread over both nodes as one. The embedded daemon keeps both
 * behaviours on its own.
 */
import { expect } from 'chai';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { WsClient } from '../helpers/ws-client.js';

type ErrorBody = { error: { code: string; message: string } };

const signIn = (d: Daemon, email: string, password: string) => call<ErrorBody & { token?: string }>(d, 'POST', '/api/sessions', { body: { email, password } });

describe('sessions across two daemons on one Redis', () => {
  let nodeA: Daemon;
  let nodeB: Daemon;
  const sockets: WsClient[] = [];

  const live = async (d: Daemon, u: TestUser): Promise<WsClient> => {
    const ws = await WsClient.open(d.httpPort, u.token);
    sockets.push(ws);
    return ws;
  };

  before(async () => {
    [nodeA, nodeB] = await Promise.all([startDaemon({ redis: true }), startDaemon({ redis: true })]);
  });
  after(async () => {
    await Promise.all([nodeA.stop(), nodeB.stop()]);
  });
  afterEach(() => {
    for (const ws of sockets.splice(0)) ws.close();
  });

  describe('sign-out', () => {
    it('signing out on A closes the session’s WebSockets on B with 4401, and the token is refused on both', async () => {
      const u = await signedInUser(nodeA);
      const onB = await live(nodeB, u);
      const onA = await live(nodeA, u);
      expect((await call(nodeA, 'DELETE', '/api/sessions', { token: u.token })).status).to.equal(204);
      expect(await onA.waitClosed()).to.equal(4401);
      expect(await onB.waitClosed(3000)).to.equal(4401);
      for (const d of [nodeA, nodeB]) {
        expect((await call(d, 'GET', '/api/vars', { token: u.token })).status, d === nodeA ? 'A' : 'B').to.equal(401);
        expect((await WsClient.refusal(`ws://127.0.0.1:${d.httpPort}/ws?token=${u.token}`)).status).to.equal(401);
      }
    });

    it('closes only that session’s sockets: another session of the same user stays open on B', async () => {
      const u = await signedInUser(nodeA);
      const second = await signIn(nodeB, u.email, u.password);
      expect(second.status).to.equal(200);
      const other: TestUser = { ...u, token: second.body.token as string };
      const gone = await live(nodeB, u);
      const stays = await live(nodeB, other);
      expect((await call(nodeA, 'DELETE', '/api/sessions', { token: u.token })).status).to.equal(204);
      expect(await gone.waitClosed(3000)).to.equal(4401);
      // The revocation reached B (it closed `gone`); `stays` still gets its frames.
      expect(stays.closeCode).to.equal(null);
      expect((await call(nodeB, 'GET', '/api/vars', { token: other.token })).status).to.equal(200);
      stays.send({ type: 'set_var', name: 'speed', value: 3, id: 'still-here' });
      expect(await stays.waitFor((f) => f.type === 'var_delivery' && f.id === 'still-here')).to.include({ name: 'speed' });
      expect(stays.closeCode).to.equal(null);
    });
  });

  describe('failed-login limiter', () => {
    it('five failures spread over A and B lock the email on both; the lockout ends on both', async () => {
      const victim = await signedInUser(nodeA);
      for (let i = 0; i < 5; i++) {
        const r = await signIn(i % 2 === 0 ? nodeA : nodeB, victim.email, `guess-${i}`);
        expect(r.status, `attempt ${i + 1}`).to.equal(401);
      }
      for (const d of [nodeA, nodeB]) {
        const locked = await signIn(d, victim.email, victim.password);
        expect(locked.status, d === nodeA ? 'A' : 'B').to.equal(429);
        expect(locked.body.error.code).to.equal('too_many_requests');
        expect(Number(locked.headers.get('retry-after'))).to.be.within(1, 900);
      }
      // Same email typed differently is the same account on the other node too.
      expect((await signIn(nodeB, victim.email.toUpperCase(), victim.password)).status).to.equal(429);
      await eventually(
        async () => {
          expect((await signIn(nodeB, victim.email, victim.password)).status).to.equal(200);
        },
        { timeoutMs: 4000, intervalMs: 250 },
      );
    });

    it('four failures spread over A and B still let the right password in (the count is exact)', async () => {
      const victim = await signedInUser(nodeA);
      for (let i = 0; i < 4; i++) expect((await signIn(i % 2 === 0 ? nodeB : nodeA, victim.email, `guess-${i}`)).status).to.equal(401);
      expect((await signIn(nodeA, victim.email, victim.password)).status).to.equal(200);
      // The success cleared the record on every node: four more failures are allowed again.
      for (let i = 0; i < 4; i++) expect((await signIn(i % 2 === 0 ? nodeA : nodeB, victim.email, `again-${i}`)).status).to.equal(401);
      expect((await signIn(nodeB, victim.email, victim.password)).status).to.equal(200);
    });

    it('parallel guesses spread over both nodes do not get past the limit', async () => {
      const victim = await signedInUser(nodeA);
      const results = await Promise.all(Array.from({ length: 16 }, (_, i) => signIn(i % 2 === 0 ? nodeA : nodeB, victim.email, `parallel-${i}`)));
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((s) => s === 401).length).to.be.at.most(5);
      expect(statuses.filter((s) => s === 429).length).to.be.at.least(11);
    });

    it('other emails are unaffected by a locked one', async () => {
      const victim = await signedInUser(nodeA);
      const bystander = await signedInUser(nodeB);
      for (let i = 0; i < 5; i++) await signIn(i % 2 === 0 ? nodeA : nodeB, victim.email, `guess-${i}`);
      expect((await signIn(nodeB, victim.email, victim.password)).status).to.equal(429);
      expect((await signIn(nodeA, bystander.email, bystander.password)).status).to.equal(200);
    });
  });
});

describe('the session cache across daemons on one Redis (http.sessionCacheMs)', () => {
  let nodeA: Daemon;
  /** Caches sessions for 20 s: what it refuses sooner, it refused because it heard the sign-out. */
  let longTtl: Daemon;
  /** Caches sessions for 1.5 s; made to miss the sign-out message, as a node whose subscriber connection was down. */
  let deaf: Daemon;
  const DEAF_TTL_MS = 1500;

  before(async () => {
    [nodeA, longTtl, deaf] = await Promise.all([
      startDaemon({ redis: true }),
      startDaemon({ redis: true, overrides: { http: { sessionCacheMs: 20_000 } } }),
      startDaemon({ redis: true, overrides: { http: { sessionCacheMs: DEAF_TTL_MS } } }),
    ]);
  });
  after(async () => {
    await Promise.all([nodeA.stop(), longTtl.stop(), deaf.stop()]);
  });

  it('a node that hears the sign-out refuses the token at once, though it had the session cached for 20 s', async () => {
    const u = await signedInUser(nodeA);
    expect((await call(longTtl, 'GET', '/api/vars', { token: u.token })).status).to.equal(200);
    expect(longTtl.ctx.sessionRevocations.sessions.get(u.token, Date.now())?.email).to.equal(u.email);
    expect((await call(nodeA, 'DELETE', '/api/sessions', { token: u.token })).status).to.equal(204);
    expect((await call(nodeA, 'GET', '/api/vars', { token: u.token })).status).to.equal(401);
    await eventually(async () => expect((await call(longTtl, 'GET', '/api/vars', { token: u.token })).status).to.equal(401), { timeoutMs: 5000, intervalMs: 50 });
  });

  it('a node that missed the sign-out message refuses the token within http.sessionCacheMs of its last read', async () => {
    const u = await signedInUser(nodeA);
    // This node's sign-outs stop arriving (at-most-once pubsub, its subscriber down).
    await deaf.ctx.sessionRevocations.stop();
    try {
      expect((await call(deaf, 'GET', '/api/vars', { token: u.token })).status).to.equal(200);
      const lastRead = Date.now();
      expect((await call(nodeA, 'DELETE', '/api/sessions', { token: u.token })).status).to.equal(204);
      await eventually(async () => expect((await call(deaf, 'GET', '/api/vars', { token: u.token })).status).to.equal(401), { timeoutMs: DEAF_TTL_MS + 3000, intervalMs: 50 });
      // Refused once its entry lapsed, not because it heard anything; and not later than the TTL allows (plus a request's time).
      expect(Date.now() - lastRead).to.be.below(DEAF_TTL_MS + 2500);
    } finally {
      await deaf.ctx.sessionRevocations.start();
    }
  });
});

describe('sessions on one embedded daemon (no Redis)', () => {
  let daemon: Daemon;
  before(async () => {
    daemon = await startDaemon();
  });
  after(async () => {
    await daemon.stop();
  });

  it('sign-out closes the session’s WebSocket with 4401 and the token stops working', async () => {
    const u = await signedInUser(daemon);
    const ws = await WsClient.open(daemon.httpPort, u.token);
    expect((await call(daemon, 'DELETE', '/api/sessions', { token: u.token })).status).to.equal(204);
    expect(await ws.waitClosed()).to.equal(4401);
    expect((await call(daemon, 'GET', '/api/vars', { token: u.token })).status).to.equal(401);
  });

  it('the limiter locks an email after five failures and lets it in after the lockout', async () => {
    const victim = await signedInUser(daemon);
    for (let i = 0; i < 5; i++) expect((await signIn(daemon, victim.email, `guess-${i}`)).status).to.equal(401);
    expect((await signIn(daemon, victim.email, victim.password)).status).to.equal(429);
    await eventually(
      async () => {
        expect((await signIn(daemon, victim.email, victim.password)).status).to.equal(200);
      },
      { timeoutMs: 4000, intervalMs: 250 },
    );
  });
});
