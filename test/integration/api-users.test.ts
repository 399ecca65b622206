/** POST /api/users and GET /healthz over real HTTP: success, conflicts, and every kind of bad body. */
import { expect } from 'chai';
import { startDaemon, type Daemon } from '../helpers/daemon.js';

describe('HTTP: users and health', () => {
  let daemon: Daemon;
  before(async () => {
    daemon = await startDaemon({ redis: true });
  });
  after(() => daemon.stop());

  const post = (body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    fetch(`${daemon.http}/api/users`, { method: 'POST', headers, body });
  const email = () => `p${Math.random().toString(36).slice(2)}@example.com`;

  describe('POST /api/users', () => {
    it('creates a user and answers 201 with a 12-character API key', async () => {
      const res = await post(JSON.stringify({ email: email(), password: 'correct horse' }));
      expect(res.status).to.equal(201);
      const body = (await res.json()) as { apiKey: string };
      expect(body.apiKey).to.match(/^[A-Za-z0-9]{12}$/);
      expect(await daemon.ctx.store.verifyApiKey(body.apiKey)).to.equal(true);
    });

    it('answers 409 for an email already taken, whatever its case', async () => {
      const e = email();
      expect((await post(JSON.stringify({ email: e, password: 'correct horse' }))).status).to.equal(201);
      const res = await post(JSON.stringify({ email: e.toUpperCase(), password: 'another one!' }));
      expect(res.status).to.equal(409);
      expect(await res.json()).to.deep.equal({ error: { code: 'email_taken', message: 'email already registered' } });
    });

    it('answers 400 with a message naming the problem', async () => {
      const cases: Array<[string, RegExp]> = [
        ['', /empty/],
        ['{"email":', /not valid JSON/],
        ['[]', /body: /],
        ['"just a string"', /body: /],
        [JSON.stringify({ email: 'nope', password: 'correct horse' }), /email: email must look like/],
        [JSON.stringify({ email: email(), password: 'short' }), /password: password must be at least 8/],
        [JSON.stringify({ email: email(), password: 12345678 }), /password: password must be a string/],
        [JSON.stringify({ email: email() }), /password/],
        [JSON.stringify({ email: email(), password: 'correct horse', admin: true }), /admin|Unrecognized/i],
        [JSON.stringify({ email: `${'a'.repeat(300)}@example.com`, password: 'correct horse' }), /254/],
        [JSON.stringify({ email: email(), password: 'x'.repeat(300) }), /256/],
        [JSON.stringify({ email: { $ne: null }, password: 'correct horse' }), /email/],
      ];
      for (const [body, message] of cases) {
        const res = await post(body);
        expect(res.status, body.slice(0, 40)).to.equal(400);
        const json = (await res.json()) as { error: { code: string; message: string } };
        expect(json.error.code).to.equal('bad_request');
        expect(json.error.message, body.slice(0, 40)).to.match(message);
      }
    });

    it('answers 400 for a body that is not JSON by content type', async () => {
      const res = await post(JSON.stringify({ email: email(), password: 'correct horse' }), { 'content-type': 'text/plain' });
      expect(res.status).to.equal(400);
    });

    it('answers 413 for an oversized body without reading it all', async () => {
      const res = await post(Buffer.alloc(daemon.config.http.maxBodyBytes + 1, 0x20));
      expect(res.status).to.equal(413);
      expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('payload_too_large');
    });

    it('survives binary garbage', async () => {
      const res = await post(Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x80]));
      expect(res.status).to.equal(400);
      expect((await fetch(`${daemon.http}/healthz`)).status).to.equal(200);
    });
  });

  describe('GET /healthz', () => {
    it('answers 200 with each backend', async () => {
      const res = await fetch(`${daemon.http}/healthz`);
      expect(res.status).to.equal(200);
      const body = (await res.json()) as { status: string; backends: Record<string, { ok: boolean; kind: string }> };
      expect(body.status).to.equal('ok');
      expect(body.backends.store).to.include({ ok: true, kind: 'redis' });
      expect(body.backends.pubsub).to.include({ ok: true, kind: 'redis' });
      expect(body.backends.logs).to.include({ ok: true, kind: 'memory' });
    });
  });

  describe('unknown routes', () => {
    it('answers 404 JSON', async () => {
      const res = await fetch(`${daemon.http}/api/nothing-here`);
      expect(res.status).to.equal(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('not_found');
    });
  });
});
