/**
 * GET /api/logs on real Meilisearch (and Redis): text search, level/device/time filters, limit,
 * newest first, query validation, and tenant isolation — another key's logs never show up, whatever
 * the query.
 */
import { expect } from 'chai';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { b64, LineClient } from '../helpers/tcp-client.js';

type Hit = { id: string; apiKey: string; deviceId: string | null; level: string; message: string; receivedAt: number; timestamp: number | null; fields: Record<string, unknown> };
type Search = { hits: Hit[]; total: number };
type ErrorBody = { error: { code: string; message: string } };

describe('REST /api/logs (real Meilisearch + Redis)', () => {
  let daemon: Daemon;
  let a: TestUser;
  let b: TestUser;
  let middle: number;

  const search = async (u: TestUser, query: string) => {
    const r = await call<Search>(daemon, 'GET', `/api/logs${query}`, { token: u.token });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    return r.body;
  };

  const sendLogs = async (apiKey: string, deviceId: string, logs: object[]) => {
    const dev = await LineClient.open(daemon.tcpPort);
    dev.line(`v:${apiKey}:${deviceId}`);
    dev.line(`l:${apiKey}:${b64(logs)}`);
    await dev.waitLines(1);
    return dev;
  };

  before(async () => {
    daemon = await startDaemon({ redis: true, meili: true });
    [a, b] = await Promise.all([signedInUser(daemon), signedInUser(daemon)]);
    const d1 = await sendLogs(a.apiKey, 'phone-1', [
      { message: 'player joined the lobby', level: 'info', timestamp: 1 },
      { message: 'texture cache miss', level: 'warn', timestamp: 2 },
    ]);
    await eventually(async () => expect((await search(a, '')).total).to.equal(2), { timeoutMs: 10_000 });
    // Later logs get a strictly later receive time.
    middle = Date.now() + 1;
    await eventually(() => expect(Date.now()).to.be.greaterThan(middle), { intervalMs: 1 });
    const d2 = await sendLogs(a.apiKey, 'tablet-2', [
      { message: 'player left the lobby', level: 'info', timestamp: 3 },
      { message: 'shader compile failed', level: 'error', timestamp: 4, shader: 'water' },
    ]);
    const d3 = await sendLogs(b.apiKey, 'phone-1', [{ message: 'player joined the lobby of user b', level: 'info' }]);
    await eventually(async () => expect((await search(a, '')).total).to.equal(4), { timeoutMs: 10_000 });
    await eventually(async () => expect((await search(b, '')).total).to.equal(1), { timeoutMs: 10_000 });
    for (const d of [d1, d2, d3]) d.close();
  });
  after(async () => {
    await daemon.stop();
  });

  it('answers every log of the key, newest first, with its fields', async () => {
    const r = await search(a, '');
    expect(r.hits.map((h) => h.message)).to.deep.equal(['shader compile failed', 'player left the lobby', 'texture cache miss', 'player joined the lobby']);
    const first = r.hits[0] as Hit;
    expect(first).to.include({ apiKey: a.apiKey, deviceId: 'tablet-2', level: 'error', timestamp: 4 });
    expect(first.fields).to.deep.equal({ shader: 'water' });
    expect(first.receivedAt).to.be.a('number');
  });

  it('searches text', async () => {
    const r = await search(a, '?q=lobby');
    expect(r.hits.map((h) => h.message)).to.deep.equal(['player left the lobby', 'player joined the lobby']);
    expect((await search(a, `?q=${encodeURIComponent('shader')}`)).hits).to.have.length(1);
  });

  it('filters by level and by device', async () => {
    expect((await search(a, '?level=warn')).hits.map((h) => h.message)).to.deep.equal(['texture cache miss']);
    expect((await search(a, '?device=phone-1')).hits.map((h) => h.message)).to.deep.equal(['texture cache miss', 'player joined the lobby']);
    expect((await search(a, '?device=phone-1&level=info&q=lobby')).hits.map((h) => h.message)).to.deep.equal(['player joined the lobby']);
    expect((await search(a, '?level=fatal')).hits).to.deep.equal([]);
  });

  it('filters by receive time (from and to, inclusive)', async () => {
    expect((await search(a, `?from=${middle}`)).hits.map((h) => h.message)).to.deep.equal(['shader compile failed', 'player left the lobby']);
    expect((await search(a, `?to=${middle - 1}`)).hits.map((h) => h.message)).to.deep.equal(['texture cache miss', 'player joined the lobby']);
    expect((await search(a, `?from=${middle}&to=${middle}`)).hits.length).to.be.at.most(2);
  });

  it('limits the number of hits and still counts them all', async () => {
    const r = await search(a, '?limit=1');
    expect(r.hits.map((h) => h.message)).to.deep.equal(['shader compile failed']);
    expect(r.total).to.equal(4);
    expect((await search(a, '?limit=1000')).hits).to.have.length(4);
  });

  const bad: Array<[string, RegExp]> = [
    ['?limit=0', /limit/],
    ['?limit=1001', /limit/],
    ['?limit=ten', /limit/],
    ['?limit=-1', /limit/],
    ['?from=yesterday', /from/],
    ['?to=1.5', /to/],
    ['?from=10&to=5', /from must not be after to/],
    [`?q=${'q'.repeat(513)}`, /q is longer/],
    [`?level=${'l'.repeat(33)}`, /level/],
    [`?device=${'d'.repeat(65)}`, /device/],
    ['?apiKey=AAAAAAAAAAAA', /apiKey/],
    ['?limit=1&limit=2', /more than once/],
    ['?kind=changes', /kind must be log or change/],
  ];
  for (const [query, message] of bad) {
    it(`answers 400 for ${query.slice(0, 40)}`, async () => {
      const r = await call<ErrorBody>(daemon, 'GET', `/api/logs${query}`, { token: a.token });
      expect(r.status).to.equal(400);
      expect(r.body.error.code).to.equal('bad_request');
      expect(r.body.error.message).to.match(message);
    });
  }

  it('keeps a change that reached a device in its timeline, apart from game logs (kind=change|log)', async () => {
    const dev = await LineClient.open(daemon.tcpPort);
    dev.line(`v:${a.apiKey}:phone-9`);
    await dev.waitLines(1);
    const put = await call(daemon, 'PUT', '/api/vars/speed', { token: a.token, body: { value: 3, target: { devices: ['phone-9'] } } });
    expect(put.status, JSON.stringify(put.body)).to.equal(200);
    await dev.waitLines(2);
    dev.close();
    const changes = await eventually(async () => {
      const r = await search(a, '?kind=change');
      expect(r.total).to.equal(1);
      return r;
    }, { timeoutMs: 10_000 });
    expect(changes.hits[0]).to.include({ deviceId: 'phone-9' });
    expect(changes.hits[0]!.fields).to.include({ kind: 'change', name: 'speed', after: '3' });
    const games = await search(a, '?kind=log');
    expect(games.total).to.equal(4);
    expect(games.hits.every((h) => h.fields.kind !== 'change')).to.equal(true);
  });

  it('never answers another key’s logs', async () => {
    const rb = await search(b, '?q=lobby');
    expect(rb.hits.map((h) => h.message)).to.deep.equal(['player joined the lobby of user b']);
    expect(rb.hits.every((h) => h.apiKey === b.apiKey)).to.equal(true);
    const ra = await search(a, '?q=user%20b');
    expect(ra.hits.every((h) => h.apiKey === a.apiKey)).to.equal(true);
    expect((await search(b, '?device=tablet-2')).hits).to.deep.equal([]);
    expect((await search(b, '?level=error')).hits).to.deep.equal([]);
  });
});
