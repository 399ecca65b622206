/**
 * POST/DELETE /api/sessions and bearer authentication, on real Redis: sign-in, the same 401 for an
 * unknown email and a wrong password, body validation, the failed-login limiter, sign-out, and every
 * way a bearer token can be wrong on every authenticated endpoint.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { WsClient } from '../helpers/ws-client.js';

type ErrorBody = { error: { code: string; message: string } };

const AUTHENTICATED: Array<[string, string, unknown?]> = [
  ['GET', '/api/vars'],
  ['PUT', '/api/vars/speed', { value: 1 }],
  ['GET', '/api/logs'],
  ['GET', '/api/devices'],
  ['DELETE', '/api/sessions'],
];

describe('REST /api/sessions and bearer auth (real Redis)', () => {
  let daemon: Daemon;
  let user: TestUser;

  before(async () => {
    daemon = await startDaemon({ redis: true });
    user = await signedInUser(daemon);
  });
  after(async () => {
    await daemon.stop();
  });

  describe('POST /api/sessions', () => {
    it('answers a random token (≥ 128 bits), the API key, the email and the expiry', async () => {
      const before = Date.now();
      const a = await call<{ token: string; apiKey: string; email: string; expiresAt: number }>(daemon, 'POST', '/api/sessions', { body: { email: user.email, password: user.password } });
      const b = await call<{ token: string }>(daemon, 'POST', '/api/sessions', { body: { email: user.email.toUpperCase(), password: user.password } });
      expect(a.status).to.equal(200);
      expect(b.status).to.equal(200);
      expect(a.body.apiKey).to.equal(user.apiKey);
      expect(a.body.email).to.equal(user.email);
      expect(a.body.token).to.match(/^[A-Za-z0-9_-]{43}$/); // 32 bytes of base64url
      expect(a.body.token).to.not.equal(b.body.token);
      expect(a.body.expiresAt).to.be.greaterThan(before + daemon.config.store.sessionTtlMs - 60_000);
      const vars = await call(daemon, 'GET', '/api/vars', { token: a.body.token });
      expect(vars.status).to.equal(200);
    });

    it('answers the same 401 for an unknown email and for a wrong password', async () => {
      const wrong = await call<ErrorBody>(daemon, 'POST', '/api/sessions', { body: { email: user.email, password: 'not the password' } });
      const unknown = await call<ErrorBody>(daemon, 'POST', '/api/sessions', { body: { email: `nobody-${randomBytes(4).toString('hex')}@example.com`, password: 'not the password' } });
      expect(wrong.status).to.equal(401);
      expect(unknown.status).to.equal(401);
      expect(wrong.body).to.deep.equal(unknown.body);
      expect(wrong.body.error.code).to.equal('unauthorized');
    });

    const bad: Array<[string, unknown, RegExp]> = [
      ['malformed JSON', '{"email": "a@example.com", ', /not valid JSON/],
      ['an empty body', '', /empty/],
      ['a JSON array', [1, 2], /body/],
      ['a number for email', { email: 42, password: 'x' }, /email must be a string/],
      ['a missing password', { email: 'a@example.com' }, /password/],
      ['an unknown field', { email: 'a@example.com', password: 'abcdefgh', admin: true }, /admin/],
    ];
    for (const [what, body, message] of bad) {
      it(`answers 400 for ${what}`, async () => {
        const res = await call<ErrorBody>(daemon, 'POST', '/api/sessions', { body });
        expect(res.status).to.equal(400);
        expect(res.body.error.code).to.equal('bad_request');
        expect(res.body.error.message).to.match(message);
      });
    }

    it('answers 400 for a body that is not JSON by its content type', async () => {
      const res = await call<ErrorBody>(daemon, 'POST', '/api/sessions', { body: 'email=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(res.status).to.equal(400);
      expect(res.body.error.message).to.match(/Content-Type/);
    });

    it('answers 413 for a body over the limit', async () => {
      const res = await call<ErrorBody>(daemon, 'POST', '/api/sessions', { body: { email: user.email, password: 'x'.repeat(daemon.config.http.maxBodyBytes) } });
      expect(res.status).to.equal(413);
      expect(res.body.error.code).to.equal('payload_too_large');
    });
  });

  describe('failed-login limiter', () => {
    it('after 5 failures refuses even the right password with 429 and Retry-After; other emails are unaffected', async () => {
      const victim = await signedInUser(daemon);
      for (let i = 0; i < 5; i++) {
        const r = await call(daemon, 'POST', '/api/sessions', { body: { email: victim.email, password: `guess-${i}` } });
        expect(r.status, `attempt ${i + 1}`).to.equal(401);
      }
      const locked = await call<ErrorBody>(daemon, 'POST', '/api/sessions', { body: { email: victim.email, password: victim.password } });
      expect(locked.status).to.equal(429);
      expect(locked.body.error.code).to.equal('too_many_requests');
      expect(Number(locked.headers.get('retry-after'))).to.be.within(1, 900);
      // Same email typed differently is the same account.
      const upper = await call(daemon, 'POST', '/api/sessions', { body: { email: victim.email.toUpperCase(), password: victim.password } });
      expect(upper.status).to.equal(429);
      const other = await call(daemon, 'POST', '/api/sessions', { body: { email: user.email, password: user.password } });
      expect(other.status).to.equal(200);
      // The lockout ends (1 s for the first one) and the right password works again.
      await eventually(
        async () => {
          const r = await call(daemon, 'POST', '/api/sessions', { body: { email: victim.email, password: victim.password } });
          expect(r.status).to.equal(200);
        },
        { timeoutMs: 4000, intervalMs: 250 },
      );
    });

    it('does not let parallel guesses past the limit', async () => {
      const victim = await signedInUser(daemon);
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => call(daemon, 'POST', '/api/sessions', { body: { email: victim.email, password: `parallel-${i}` } })),
      );
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((s) => s === 401).length).to.be.at.most(5);
      expect(statuses.filter((s) => s === 429).length).to.be.at.least(7);
    });
  });

  describe('DELETE /api/sessions', () => {
    it('answers 204, the token stops working, and its WebSocket is closed', async () => {
      const u = await signedInUser(daemon);
      const ws = await WsClient.open(daemon.httpPort, u.token);
      const res = await call(daemon, 'DELETE', '/api/sessions', { token: u.token });
      expect(res.status).to.equal(204);
      expect(res.body).to.equal(null);
      expect((await call(daemon, 'GET', '/api/vars', { token: u.token })).status).to.equal(401);
      expect((await call(daemon, 'DELETE', '/api/sessions', { token: u.token })).status).to.equal(401);
      expect(await ws.waitClosed()).to.equal(4401);
    });
  });

  describe('bearer authentication', () => {
    let expired: string;
    before(async () => {
      const u = await daemon.ctx.store.authenticate(user.email, user.password);
      if (!u) throw new Error('cannot authenticate the test user');
      const s = await daemon.ctx.store.createSession(u, 1);
      expired = s.token;
      await eventually(async () => expect(await daemon.ctx.store.getSession(expired)).to.equal(null));
    });

    const cases: Array<[string, (t: string) => Record<string, string>]> = [
      ['no Authorization header', () => ({})],
      ['a wrong scheme', (t) => ({ authorization: `Basic ${t}` })],
      ['a bare token', (t) => ({ authorization: t })],
      ['an unknown token', () => ({ authorization: `Bearer ${randomBytes(32).toString('base64url')}` })],
      ['a malformed token', () => ({ authorization: 'Bearer ../../etc/passwd' })],
    ];
    for (const [method, path, body] of AUTHENTICATED) {
      for (const [what, headers] of cases) {
        it(`${method} ${path} answers 401 for ${what}`, async () => {
          const res = await call<ErrorBody>(daemon, method, path, { headers: headers(user.token), body });
          expect(res.status).to.equal(401);
          expect(res.body.error.code).to.equal('unauthorized');
        });
      }
      it(`${method} ${path} answers 401 for an expired token`, async () => {
        const res = await call<ErrorBody>(daemon, method, path, { token: expired, body });
        expect(res.status).to.equal(401);
      });
    }

    it('accepts the scheme case-insensitively', async () => {
      const res = await call(daemon, 'GET', '/api/vars', { headers: { authorization: `bearer ${user.token}` } });
      expect(res.status).to.equal(200);
    });
  });
});
