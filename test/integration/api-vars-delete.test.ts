/**
 * DELETE /api/vars/:name on real Redis and on the embedded store: the variable leaves `<apiKey>:vs`
 * (both fields and its place in the order), the key's dashboards hear a `var_deleted` event and no
 * other key's do, and bad or hostile requests get clear errors without touching anything.
 * Variables are created the way a game creates them, with a device's `i:` line: since DESIGN.md §8 a
 * PUT sets an override and leaves `<apiKey>:vs` (the reported values) alone.
 */
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { sharedRedis } from '../helpers/processes.js';
import { b64, LineClient } from '../helpers/tcp-client.js';
import { WsClient } from '../helpers/ws-client.js';

type Var = { name: string; type: string; value: string };
type ErrorBody = { error: { code: string; message: string } };

for (const backend of ['redis', 'memory'] as const) {
  describe(`REST DELETE /api/vars/:name (${backend} store)`, () => {
    let daemon: Daemon;
    let redis: Redis | null = null;
    let a: TestUser;
    let b: TestUser;
    const closers: Array<{ close(): void }> = [];

    before(async () => {
      daemon = await startDaemon({ redis: backend === 'redis' });
      if (backend === 'redis') redis = (await sharedRedis()).client();
    });
    after(async () => {
      redis?.disconnect();
      await daemon.stop();
    });
    beforeEach(async () => {
      [a, b] = await Promise.all([signedInUser(daemon), signedInUser(daemon)]);
    });
    afterEach(() => {
      for (const c of closers.splice(0)) c.close();
      reporters.clear();
    });

    const del = (u: TestUser | null, name: string) => call<ErrorBody | null>(daemon, 'DELETE', `/api/vars/${name}`, u ? { token: u.token } : {});
    const getVars = async (u: TestUser) => {
      const r = await call<{ vars: Var[] }>(daemon, 'GET', '/api/vars', { token: u.token });
      expect(r.status).to.equal(200);
      return r.body.vars;
    };
    // One device per user, opened on first use; the users are fresh for every test.
    const reporters = new Map<string, LineClient>();
    const deviceOf = async (u: TestUser): Promise<LineClient> => {
      const known = reporters.get(u.apiKey);
      if (known) return known;
      const dev = await LineClient.open(daemon.tcpPort);
      closers.push(dev);
      dev.line(`v:${u.apiKey}:reporter`);
      expect(await dev.next()).to.equal('OK');
      reporters.set(u.apiKey, dev);
      return dev;
    };
    /** Reports one variable as a game does (`i:`) and waits until `GET /api/vars` holds it. */
    const report = async (u: TestUser, name: string, type: string, value: string) => {
      const dev = await deviceOf(u);
      dev.line(`i:${u.apiKey}:${b64([{ name, type, value }])}`);
      await eventually(async () => expect((await getVars(u)).find((v) => v.name === name)).to.deep.equal({ name, type, value }));
    };

    it('removes the variable, keeps the others in order, and answers 204', async () => {
      await report(a, 'speed', 'integer', '1');
      await report(a, 'gravity', 'float', '9.81');
      await report(a, 'name', 'string', 'Ada');
      const r = await del(a, 'gravity');
      expect(r.status).to.equal(204);
      expect(r.body).to.equal(null);
      expect((await getVars(a)).map((v) => v.name)).to.deep.equal(['speed', 'name']);
      if (redis) {
        expect(await redis.hkeys(`${a.apiKey}:vs`)).to.have.members(['speed:type', 'speed:value', 'name:type', 'name:value']);
        expect(await redis.zrange(`observerio:varorder:{${a.apiKey}:vs}`, 0, -1)).to.deep.equal(['speed', 'name']);
      }
      // Reported again, it comes back at the end.
      await report(a, 'gravity', 'float', '1.62');
      expect((await getVars(a)).map((v) => v.name)).to.deep.equal(['speed', 'name', 'gravity']);
    });

    it('removes a variable a device reported, which the device may report again', async () => {
      const dev = await LineClient.open(daemon.tcpPort);
      closers.push(dev);
      dev.line(`v:${a.apiKey}:del-device`);
      expect(await dev.next()).to.equal('OK');
      dev.line(`i:${a.apiKey}:${b64([{ name: 'hp', type: 'integer', value: '100' }, { name: 'mana', type: 'integer', value: '5' }])}`);
      await eventually(async () => expect((await getVars(a)).map((v) => v.name)).to.deep.equal(['hp', 'mana']));
      expect((await del(a, 'hp')).status).to.equal(204);
      expect(await getVars(a)).to.deep.equal([{ name: 'mana', type: 'integer', value: '5' }]);
      dev.line(`i:${a.apiKey}:${b64([{ name: 'hp', type: 'integer', value: '90' }])}`);
      await eventually(async () => expect(await getVars(a)).to.deep.equal([{ name: 'mana', type: 'integer', value: '5' }, { name: 'hp', type: 'integer', value: '90' }]));
    });

    it("announces var_deleted to the key's dashboards, and only to them", async () => {
      await report(a, 'speed', 'integer', '1');
      await report(b, 'speed', 'integer', '2');
      const wsA = await WsClient.open(daemon.httpPort, a.token);
      const wsB = await WsClient.open(daemon.httpPort, b.token);
      closers.push(wsA, wsB);
      expect((await del(a, 'speed')).status).to.equal(204);
      const ev = await wsA.waitFor((f) => f.type === 'var_deleted');
      expect(ev).to.deep.equal({ type: 'var_deleted', apiKey: a.apiKey, name: 'speed', source: 'dashboard' });
      // B's own change still arrives, after A's event would have: B never got A's.
      await report(b, 'marker', 'string', 'x');
      await wsB.waitFor((f) => f.type === 'vars' && JSON.stringify(f).includes('marker'));
      expect(wsB.frames.filter((f) => f.type === 'var_deleted')).to.deep.equal([]);
      expect(await getVars(b)).to.deep.equal([
        { name: 'speed', type: 'integer', value: '2' },
        { name: 'marker', type: 'string', value: 'x' },
      ]);
    });

    it("answers 404 for a variable the key does not have, even one another key has, and changes nothing", async () => {
      await report(b, 'secret', 'string', 'b-only');
      const r = await del(a, 'secret');
      expect(r.status).to.equal(404);
      expect((r.body as ErrorBody).error.code).to.equal('not_found');
      expect((r.body as ErrorBody).error.message).to.include('secret');
      expect(await getVars(b)).to.deep.equal([{ name: 'secret', type: 'string', value: 'b-only' }]);
      expect((await del(a, 'never-there')).status).to.equal(404);
    });

    it('answers 401 without a session or with a bad token, and deletes nothing', async () => {
      await report(a, 'speed', 'integer', '1');
      const none = await del(null, 'speed');
      expect(none.status).to.equal(401);
      expect((none.body as ErrorBody).error.code).to.equal('unauthorized');
      const bad = await call<ErrorBody>(daemon, 'DELETE', '/api/vars/speed', { token: 'not-a-real-session-token' });
      expect(bad.status).to.equal(401);
      expect(await getVars(a)).to.deep.equal([{ name: 'speed', type: 'integer', value: '1' }]);
    });

    it('checks the name as PUT does: bad percent-encoding, control characters, over 128 characters', async () => {
      for (const [raw, want] of [
        ['%E0%A4%A', 'percent-encoding'],
        ['a%00b', 'control characters'],
        ['x'.repeat(129), '1-128 characters'],
      ] as const) {
        const r = await del(a, raw);
        expect(r.status, raw).to.equal(400);
        expect((r.body as ErrorBody).error.code).to.equal('bad_request');
        expect((r.body as ErrorBody).error.message, raw).to.include(want);
      }
    });

    it('deletes names with separators and unicode verbatim', async () => {
      for (const name of ['a:type', 'ünï cødé', 'dots.and/slashes']) await report(a, name, 'integer', '1');
      expect((await del(a, encodeURIComponent('a:type'))).status).to.equal(204);
      expect((await getVars(a)).map((v) => v.name)).to.deep.equal(['ünï cødé', 'dots.and/slashes']);
      expect((await del(a, encodeURIComponent('ünï cødé'))).status).to.equal(204);
      expect((await getVars(a)).map((v) => v.name)).to.deep.equal(['dots.and/slashes']);
    });
  });
}
