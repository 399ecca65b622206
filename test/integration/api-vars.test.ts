/**
 * GET /api/vars and PUT /api/vars/:name on real Redis: the `<apiKey>:vs` layout, type defaults and
 * inference, value checks per type, name checks as the protocol's, body validation, and tenant
 * isolation. Delivery to devices is covered in delivery.test.ts.
 */
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { sharedRedis } from '../helpers/processes.js';
import { b64, LineClient } from '../helpers/tcp-client.js';

type Var = { name: string; type: string; value: string };
type PutResult = { var: Var; delivered: number; buffered: boolean };
type ErrorBody = { error: { code: string; message: string } };

describe('REST /api/vars (real Redis)', () => {
  let daemon: Daemon;
  let redis: Redis;
  let a: TestUser;
  let b: TestUser;

  before(async () => {
    daemon = await startDaemon({ redis: true });
    redis = (await sharedRedis()).client();
  });
  after(async () => {
    redis.disconnect();
    await daemon.stop();
  });
  beforeEach(async () => {
    [a, b] = await Promise.all([signedInUser(daemon), signedInUser(daemon)]);
  });

  const put = (u: TestUser, name: string, body: unknown) => call<PutResult>(daemon, 'PUT', `/api/vars/${name}`, { token: u.token, body });
  const getVars = async (u: TestUser) => {
    const r = await call<{ vars: Var[] }>(daemon, 'GET', '/api/vars', { token: u.token });
    expect(r.status).to.equal(200);
    return r.body.vars;
  };

  it('GET answers an empty list for a new key', async () => {
    expect(await getVars(a)).to.deep.equal([]);
  });

  it('GET answers what a device sent with i:, in first-seen order', async () => {
    const dev = await LineClient.open(daemon.tcpPort);
    try {
      dev.line(`v:${a.apiKey}`);
      dev.line(`i:${a.apiKey}:${b64([{ name: 'testing1', type: 'string', value: 'example' }, { name: 'testing2', type: 'integer', value: '-1' }])}`);
      await dev.waitLines(1);
      await eventually(async () =>
        expect(await getVars(a)).to.deep.equal([
          { name: 'testing1', type: 'string', value: 'example' },
          { name: 'testing2', type: 'integer', value: '-1' },
        ]),
      );
    } finally {
      dev.close();
    }
  });

  // DESIGN.md §8: a dashboard change is an override, and `<apiKey>:vs` keeps its original meaning
  // (what devices reported), so a PUT no longer writes it (issue 11: a device's report undid it there).
  it('PUT sets an override for every device, answers the variable, and leaves <apiKey>:vs to the devices', async () => {
    const res = await put(a, 'speed', { value: 12 });
    expect(res.status).to.equal(200);
    const { historyId, ...rest } = res.body as unknown as { historyId: string };
    expect(rest).to.deep.equal({ var: { name: 'speed', type: 'integer', value: '12' }, target: { all: true }, delivered: 0, pending: 0, buffered: true });
    expect(historyId).to.be.a('string');
    expect(await redis.hkeys(`${a.apiKey}:vs`)).to.deep.equal([]);
    const o = await call<{ overrides: Array<{ name: string; type: string; value: string }> }>(daemon, 'GET', '/api/overrides', { token: a.token });
    expect(o.body.overrides.map(({ name, type, value }) => ({ name, type, value }))).to.deep.equal([{ name: 'speed', type: 'integer', value: '12' }]);
  });

  it('PUT infers the type of a new variable from the JSON value', async () => {
    expect((await put(a, 'i', { value: 3 })).body.var).to.deep.equal({ name: 'i', type: 'integer', value: '3' });
    expect((await put(a, 'f', { value: 0.25 })).body.var).to.deep.equal({ name: 'f', type: 'float', value: '0.25' });
    expect((await put(a, 'b', { value: false })).body.var).to.deep.equal({ name: 'b', type: 'boolean', value: 'false' });
    expect((await put(a, 's', { value: 'hello' })).body.var).to.deep.equal({ name: 's', type: 'string', value: 'hello' });
  });

  it('PUT keeps the existing type, parses strings for it, and honours an explicit type', async () => {
    await put(a, 'level', { value: 1 });
    expect((await put(a, 'level', { value: '42' })).body.var).to.deep.equal({ name: 'level', type: 'integer', value: '42' });
    expect((await put(a, 'flag', { value: true })).body.var.type).to.equal('boolean');
    expect((await put(a, 'flag', { value: 'FALSE' })).body.var).to.deep.equal({ name: 'flag', type: 'boolean', value: 'false' });
    expect((await put(a, 'level', { value: 'fast', type: 'string' })).body.var).to.deep.equal({ name: 'level', type: 'string', value: 'fast' });
    expect((await put(a, 'custom', { value: 'x,y', type: 'vector2' })).body.var).to.deep.equal({ name: 'custom', type: 'vector2', value: 'x,y' });
  });

  it('PUT with a type does not read the reported types: it stands when <apiKey>:vs cannot be read, which one without a type cannot', async () => {
    // Not a hash: every read of the reported types fails (WRONGTYPE), so only a PUT that needs none passes.
    await redis.set(`${a.apiKey}:vs`, 'not a hash');
    try {
      const typed = await put(a, 'lives', { value: '3', type: 'integer' });
      expect(typed.status).to.equal(200);
      expect(typed.body.var).to.deep.equal({ name: 'lives', type: 'integer', value: '3' });
      const untyped = await call<ErrorBody>(daemon, 'PUT', '/api/vars/other', { token: a.token, body: { value: 3 } });
      // The control: this one must read the types, and that read fails: the store's failure, a 503 to retry (it was a bare 500).
      expect(untyped.status).to.equal(503);
      expect(untyped.body).to.deep.equal({ error: { code: 'unavailable', message: 'the store is unavailable; retry' } });
      const o = await call<{ overrides: Var[] }>(daemon, 'GET', '/api/overrides', { token: a.token });
      expect(o.body.overrides.map((x) => x.name)).to.deep.equal(['lives']);
    } finally {
      await redis.del(`${a.apiKey}:vs`);
    }
  });

  it('PUT refuses a value that does not fit the variable type with 400', async () => {
    await put(a, 'hp', { value: 10 });
    const cases: Array<[string, unknown, RegExp]> = [
      ['hp', { value: 'ten' }, /not a number/],
      ['hp', { value: 1.5 }, /not an integer/],
      ['hp', { value: true }, /not a number/],
      ['hp', { value: '' }, /not a number/],
      ['flag2', { value: 'maybe', type: 'boolean' }, /not a boolean/],
    ];
    for (const [name, body, message] of cases) {
      const res = await call<ErrorBody>(daemon, 'PUT', `/api/vars/${name}`, { token: a.token, body });
      expect(res.status, JSON.stringify(body)).to.equal(400);
      expect(res.body.error.message).to.match(message);
    }
    const o = await call<{ overrides: Array<{ name: string; value: string }> }>(daemon, 'GET', '/api/overrides', { token: a.token });
    expect(o.body.overrides.find((x) => x.name === 'hp')?.value).to.equal('10');
  });

  it('PUT percent-decodes the name and checks it as the protocol does', async () => {
    const ok = await put(a, encodeURIComponent('enemy speed/ü'), { value: 2 });
    expect(ok.status).to.equal(200);
    expect(ok.body.var.name).to.equal('enemy speed/ü');
    expect((await put(a, 'x'.repeat(128), { value: 1 })).status).to.equal(200);
    for (const name of ['x'.repeat(129), '%01bell', 'bad%E0%A4%A', 'tab%09']) {
      const res = await call<ErrorBody>(daemon, 'PUT', `/api/vars/${name}`, { token: a.token, body: { value: 1 } });
      expect(res.status, name).to.equal(400);
      expect(res.body.error.code).to.equal('bad_request');
    }
  });

  const badBodies: Array<[string, unknown, number, RegExp]> = [
    ['malformed JSON', '{"value": ', 400, /not valid JSON/],
    ['no value', {}, 400, /value/],
    ['a null value', { value: null }, 400, /value/],
    ['an object value', { value: { a: 1 } }, 400, /value/],
    ['a non-string type', { value: 1, type: 5 }, 400, /type must be a string/],
    ['an empty type', { value: 1, type: '' }, 400, /type/],
    ['a too long type', { value: 1, type: 't'.repeat(33) }, 400, /type/],
    ['an unknown field', { value: 1, deviceId: 'x' }, 400, /deviceId/],
  ];
  for (const [what, body, status, message] of badBodies) {
    it(`PUT answers ${status} for ${what}`, async () => {
      const res = await call<ErrorBody>(daemon, 'PUT', '/api/vars/speed', { token: a.token, body });
      expect(res.status).to.equal(status);
      expect(res.body.error.message).to.match(message);
      expect(await redis.exists(`${a.apiKey}:vs`)).to.equal(0);
    });
  }

  it('PUT answers 413 for a body over the limit', async () => {
    const res = await call<ErrorBody>(daemon, 'PUT', '/api/vars/speed', { token: a.token, body: { value: 'x'.repeat(daemon.config.http.maxBodyBytes + 1) } });
    expect(res.status).to.equal(413);
    expect(await redis.exists(`${a.apiKey}:vs`)).to.equal(0);
  });

  it('a user neither sees nor changes another user’s variables', async () => {
    const overrides = async (u: TestUser) =>
      (await call<{ overrides: Array<{ name: string; type: string; value: string }> }>(daemon, 'GET', '/api/overrides', { token: u.token })).body.overrides.map(({ name, type, value }) => ({ name, type, value }));
    await put(a, 'secret', { value: 'a-only' });
    expect(await getVars(b)).to.deep.equal([]);
    expect(await overrides(b)).to.deep.equal([]);
    const res = await put(b, 'secret', { value: 'b-value' });
    expect(res.status).to.equal(200);
    expect(await overrides(a)).to.deep.equal([{ name: 'secret', type: 'string', value: 'a-only' }]);
    expect(await overrides(b)).to.deep.equal([{ name: 'secret', type: 'string', value: 'b-value' }]);
  });
});
