/**
 * DESIGN.md §8 end to end on real Redis, over real TCP, HTTP and WebSockets: the override wins over
 * what a game reports (issue 11's reproductions), devices keep their own reported values, targets
 * (device lists, label selectors) reach exactly their devices, strategies, history with revert and
 * rollback, a change on one node reaching a device on another, and one account never reaching
 * another's devices, strategies or history.
 */
import { expect } from 'chai';
import { connect, type Client } from '../../src/sdk/index.js';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { b64, LineClient } from '../helpers/tcp-client.js';
import { WsClient } from '../helpers/ws-client.js';
import type { DeviceAnswer, DeviceListAnswer, HistoryAnswer, OverridesAnswer, SetOverrideAnswer, StrategyAnswer } from '../../src/wire.js';

type Var = { name: string; type: string; value: string };
type ErrorBody = { error: { code: string; message: string } };

const decodeV = (apiKey: string, line: string): Var[] => {
  expect(line.startsWith(`v:${apiKey}:`), line).to.equal(true);
  return JSON.parse(Buffer.from(line.slice(`v:${apiKey}:`.length), 'base64').toString('utf8')) as Var[];
};
const lineAt = async (c: LineClient, i: number): Promise<string> => (await c.waitLines(i + 1))[i] as string;
const labelsLine = (apiKey: string, labels: Record<string, string>): string => `d:${apiKey}:${b64(labels)}`;

describe('overrides, devices, strategies and history (real Redis)', () => {
  let daemon: Daemon;
  let a: TestUser;
  let b: TestUser;
  const sockets: LineClient[] = [];
  const sdks: Client[] = [];

  const device = async (u: TestUser, deviceId: string | null, labels?: Record<string, string>, d: Daemon = daemon) => {
    const c = await LineClient.open(d.tcpPort);
    sockets.push(c);
    c.line(deviceId ? `v:${u.apiKey}:${deviceId}` : `v:${u.apiKey}`);
    expect(await c.next()).to.equal('OK');
    if (labels) c.line(labelsLine(u.apiKey, labels));
    return c;
  };
  const put = async (u: TestUser, name: string, body: unknown, d: Daemon = daemon) => {
    const r = await call<SetOverrideAnswer>(d, 'PUT', `/api/vars/${encodeURIComponent(name)}`, { token: u.token, body });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    return r.body;
  };
  const getDevice = (u: TestUser, id: string, d: Daemon = daemon) => call<DeviceAnswer & ErrorBody>(d, 'GET', `/api/devices/${id}`, { token: u.token });
  const varOf = (dev: DeviceAnswer, name: string) => dev.vars.find((v) => v.name === name);

  before(async () => {
    daemon = await startDaemon({ redis: true });
  });
  after(async () => {
    await daemon.stop();
  });
  beforeEach(async () => {
    [a, b] = await Promise.all([signedInUser(daemon), signedInUser(daemon)]);
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.close();
    await Promise.all(sdks.splice(0).map((c) => c.close()));
  });

  describe('the override wins', () => {
    it('a change made while every device is offline holds after 50 devices connect and report their own defaults (SDK as the README shows)', async () => {
      const r = await put(a, 'difficulty', { value: 'easy' });
      expect(r).to.include({ delivered: 0, buffered: true });
      expect(r.target).to.deep.equal({ all: true });
      const games = await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const game = await connect({ host: '127.0.0.1', port: daemon.tcpPort, apiKey: a.apiKey, deviceId: `sim-${i}` });
          sdks.push(game);
          // The game's own default, set after connecting: it must not undo the dashboard's change.
          game.setVar('difficulty', 'normal');
          await game.flush();
          return game;
        }),
      );
      await eventually(() => {
        for (const g of games) expect(g.get('difficulty'), g.deviceId ?? '').to.equal('easy');
      }, { timeoutMs: 10_000 });
      const list = await call<DeviceListAnswer>(daemon, 'GET', '/api/devices', { token: a.token });
      expect(list.body.devices).to.have.length(50);
      for (const d of list.body.devices) expect(d).to.include({ online: true, generated: false, pendingCount: 0 });
      // The reports are read after the verifies that sent the override: a device can hold it before
      // its own report is stored.
      await eventually(async () => {
        for (const i of [0, 49]) {
          const dev = (await getDevice(a, `sim-${i}`)).body;
          expect(varOf(dev, 'difficulty')).to.include({ reported: 'normal', override: 'easy', effective: 'easy', source: 'override' });
        }
      }, { timeoutMs: 10_000 });
      // The dashboard still shows the change: it is an override, not a value a device can overwrite.
      const o = await call<OverridesAnswer>(daemon, 'GET', '/api/overrides', { token: a.token });
      expect(o.body.overrides.map((x) => [x.name, x.value])).to.deep.equal([['difficulty', 'easy']]);
    });

    it('sends the override again when a raw device reports a different value, once per report', async () => {
      await put(a, 'hp', { value: 7 });
      const dev = await device(a, 'raw-1');
      expect(decodeV(a.apiKey, await lineAt(dev, 1))).to.deep.equal([{ name: 'hp', type: 'integer', value: '7' }]);
      dev.line(`i:${a.apiKey}:${b64([{ name: 'hp', type: 'integer', value: '3' }])}`);
      expect(decodeV(a.apiKey, await lineAt(dev, 2))).to.deep.equal([{ name: 'hp', type: 'integer', value: '7' }]);
      // An echo of the override is not the game's value, and is not answered.
      dev.line(`i:${a.apiKey}:${b64([{ name: 'hp', type: 'integer', value: '7' }])}`);
      dev.line(`i:${a.apiKey}:${b64([{ name: 'other', type: 'integer', value: '1' }])}`);
      await eventually(async () => expect(varOf((await getDevice(a, 'raw-1')).body, 'other')?.reported).to.equal('1'));
      expect(dev.lines).to.have.length(3);
      expect(varOf((await getDevice(a, 'raw-1')).body, 'hp')).to.include({ reported: '3', effective: '7', source: 'override' });
      // <apiKey>:vs keeps its original meaning: what devices reported, not the dashboard's value.
      const vars = await call<{ vars: Var[] }>(daemon, 'GET', '/api/vars', { token: a.token });
      expect(vars.body.vars.find((v) => v.name === 'hp')?.value).to.equal('7');
    });

    it('clearing an override gives the device its own reported value back', async () => {
      await put(a, 'speed', { value: 9 });
      const dev = await device(a, 'clr-1');
      await lineAt(dev, 1);
      dev.line(`i:${a.apiKey}:${b64([{ name: 'speed', type: 'integer', value: '2' }])}`);
      await lineAt(dev, 2);
      const r = await call<{ delivered: number; historyId: string }>(daemon, 'DELETE', '/api/vars/speed/override', { token: a.token });
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      expect(r.body.delivered).to.equal(1);
      expect(decodeV(a.apiKey, await lineAt(dev, 3))).to.deep.equal([{ name: 'speed', type: 'integer', value: '2' }]);
      expect((await call(daemon, 'DELETE', '/api/vars/speed/override', { token: a.token })).status).to.equal(404);
    });
  });

  describe('devices', () => {
    it('two devices keep their own reported values', async () => {
      const one = await device(a, 'dev-1');
      const two = await device(a, 'dev-2');
      one.line(`i:${a.apiKey}:${b64([{ name: 'hp', type: 'integer', value: '10' }])}`);
      two.line(`i:${a.apiKey}:${b64([{ name: 'hp', type: 'integer', value: '20' }])}`);
      await eventually(async () => {
        expect(varOf((await getDevice(a, 'dev-1')).body, 'hp')).to.include({ reported: '10', effective: '10', source: 'reported' });
        expect(varOf((await getDevice(a, 'dev-2')).body, 'hp')).to.include({ reported: '20', effective: '20', source: 'reported' });
      });
    });

    it('lists labels from d:, a generated id for a connection without one, and marks a closed device offline', async () => {
      const anon = await device(a, null, { platform: 'web' });
      await eventually(async () => {
        const list = (await call<DeviceListAnswer>(daemon, 'GET', '/api/devices', { token: a.token })).body.devices;
        expect(list).to.have.length(1);
        expect(list[0]).to.include({ generated: true, online: true });
        expect(list[0]?.deviceId).to.match(/^anon-[0-9a-f]{8}-conn-\d+$/);
        expect(list[0]?.labels).to.deep.equal({ platform: 'web' });
      });
      anon.close();
      await eventually(async () => expect((await call<DeviceListAnswer>(daemon, 'GET', '/api/devices', { token: a.token })).body.devices[0]?.online).to.equal(false));
      expect((await getDevice(a, 'nobody')).status).to.equal(404);
    });

    it('answers d: before v: with not_verified and d: for another key with key_mismatch, and keeps the connection', async () => {
      const c = await LineClient.open(daemon.tcpPort);
      sockets.push(c);
      c.line(labelsLine(a.apiKey, { platform: 'x' }));
      expect(await c.next()).to.match(/^e:not_verified:/);
      c.line(`v:${a.apiKey}:tcp-iso`);
      expect(await c.next()).to.equal('OK');
      c.line(labelsLine(b.apiKey, { platform: 'x' }));
      expect(await c.next()).to.match(/^e:key_mismatch:/);
      c.line(`d:${a.apiKey}:${b64({ '1bad': 'x' })}`);
      expect(await c.next()).to.match(/^e:bad_shape:label key "1bad"/);
      c.line(`d:${a.apiKey}:${b64(['not', 'an', 'object'])}`);
      expect(await c.next()).to.match(/^e:bad_shape:/);
      expect(c.closed).to.equal(false);
    });
  });

  describe('targets', () => {
    it('a label selector reaches exactly the matching devices', async () => {
      const old = await device(a, 'p-old', { platform: 'android', build: '1.4.2' });
      const newer = await device(a, 'p-new', { platform: 'android', build: '1.5.0' });
      const ios = await device(a, 'p-ios', { platform: 'ios', build: '1.4.2' });
      await eventually(async () => expect((await getDevice(a, 'p-ios')).body.labels).to.deep.equal({ build: '1.4.2', platform: 'ios' }));
      const r = await put(a, 'aim', { value: 'assist', target: { labels: 'platform=android,build=1.4.*' } });
      expect(r).to.include({ delivered: 1, pending: 0 });
      expect(r.target).to.deep.equal({ labels: { build: '1.4.*', platform: 'android' } });
      expect(decodeV(a.apiKey, await lineAt(old, 1))).to.deep.equal([{ name: 'aim', type: 'string', value: 'assist' }]);
      // Same selector as an object: the same override, replaced.
      expect(await put(a, 'aim', { value: 'off', target: { labels: { platform: 'android', build: '1.4.*' } } })).to.include({ delivered: 1 });
      expect(decodeV(a.apiKey, await lineAt(old, 2))).to.deep.equal([{ name: 'aim', type: 'string', value: 'off' }]);
      expect(newer.lines).to.have.length(1);
      expect(ios.lines).to.have.length(1);
      expect((await call<OverridesAnswer>(daemon, 'GET', '/api/overrides', { token: a.token })).body.overrides).to.have.length(1);
    });

    it('a device list beats a selector beats every device', async () => {
      const one = await device(a, 'phone-1', { platform: 'android' });
      const two = await device(a, 'phone-2', { platform: 'android' });
      await eventually(async () => expect((await getDevice(a, 'phone-2')).body.labels).to.deep.equal({ platform: 'android' }));
      await put(a, 'aim', { value: 'all' });
      await put(a, 'aim', { value: 'droid', target: { labels: 'platform=android' } });
      const r = await put(a, 'aim', { value: 'mine', target: { devices: ['phone-1'] } });
      expect(r).to.include({ delivered: 1 });
      expect(decodeV(a.apiKey, one.lines.at(-1) ?? '')).to.deep.equal([{ name: 'aim', type: 'string', value: 'mine' }]);
      expect(decodeV(a.apiKey, await lineAt(two, 2))).to.deep.equal([{ name: 'aim', type: 'string', value: 'droid' }]);
      expect(varOf((await getDevice(a, 'phone-1')).body, 'aim')?.target).to.deep.equal({ devices: ['phone-1'] });
    });

    it('refuses ?device= and other query parameters, naming them, and bad targets with 400', async () => {
      const dev = await device(a, 'phone-1');
      const q = await call<ErrorBody>(daemon, 'PUT', '/api/vars/aim?device=phone-1', { token: a.token, body: { value: 1 } });
      expect(q.status).to.equal(400);
      expect(q.body.error.message).to.include('device');
      const cases: Array<[unknown, RegExp]> = [
        [{ labels: 'platform' }, /no '='/],
        [{ labels: 'a=1,,b=2' }, /empty term at position 4/],
        [{ devices: [] }, /empty/],
        [{ devices: ['bad id'] }, /not a device id/],
        [{ device: 'phone-1' }, /unknown field "device"/],
        ['phone-1', /must be an object/],
      ];
      for (const [target, message] of cases) {
        const r = await call<ErrorBody>(daemon, 'PUT', '/api/vars/aim', { token: a.token, body: { value: 1, target } });
        expect(r.status, JSON.stringify(target)).to.equal(400);
        expect(r.body.error.message).to.match(message);
      }
      expect(dev.lines).to.have.length(1);
    });
  });

  describe('strategies', () => {
    it('creates, applies to a target, shows which devices run it, and says "mixed" once edited', async () => {
      const one = await device(a, 's-1');
      const two = await device(a, 's-2');
      const created = await call<StrategyAnswer>(daemon, 'POST', '/api/strategies', { token: a.token, body: { name: 'fast', vars: [{ name: 'enemy_speed', value: 3 }, { name: 'spawn_ms', value: 400 }] } });
      expect(created.status, JSON.stringify(created.body)).to.equal(201);
      expect(created.body).to.include({ name: 'fast', version: 1, updatedBy: a.email });
      const applied = await call<{ delivered: number; historyId: string }>(daemon, 'POST', '/api/strategies/fast/apply', { token: a.token, body: { target: { devices: ['s-1'] } } });
      expect(applied.status, JSON.stringify(applied.body)).to.equal(200);
      expect(applied.body.delivered).to.equal(1);
      expect(decodeV(a.apiKey, await lineAt(one, 1))).to.deep.equal([
        { name: 'enemy_speed', type: 'integer', value: '3' },
        { name: 'spawn_ms', type: 'integer', value: '400' },
      ]);
      expect(two.lines).to.have.length(1);
      expect((await getDevice(a, 's-1')).body.strategy).to.equal('fast');
      expect((await getDevice(a, 's-2')).body.strategy).to.equal(null);
      expect((await call<StrategyAnswer>(daemon, 'GET', '/api/strategies/fast', { token: a.token })).body.devices).to.equal(1);
      await put(a, 'spawn_ms', { value: 100, target: { devices: ['s-1'] } });
      expect((await getDevice(a, 's-1')).body.strategy).to.equal('mixed');
    });

    it('answers 400 naming the variable with a bad value, 404 for an unknown strategy', async () => {
      await put(a, 'hp', { value: 1 });
      const r = await call<ErrorBody>(daemon, 'POST', '/api/strategies', { token: a.token, body: { name: 'bad', vars: [{ name: 'hp', value: 'lots' }] } });
      expect(r.status).to.equal(400);
      expect(r.body.error.message).to.match(/vars\[0\].*hp.*not a number/);
      expect((await call(daemon, 'GET', '/api/strategies/nope', { token: a.token })).status).to.equal(404);
      expect((await call(daemon, 'POST', '/api/strategies/nope/apply', { token: a.token })).status).to.equal(404);
      expect((await call(daemon, 'PUT', '/api/strategies/nope', { token: a.token, body: { vars: [{ name: 'x', value: 1 }] } })).status).to.equal(404);
    });

    it('concurrent edits of one strategy at one version resolve to exactly one of them', async () => {
      await call(daemon, 'POST', '/api/strategies', { token: a.token, body: { name: 'race', vars: [{ name: 'x', value: 0 }] } });
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => call<StrategyAnswer & ErrorBody>(daemon, 'PUT', '/api/strategies/race', { token: a.token, body: { version: 1, vars: [{ name: 'x', value: i + 1 }] } })),
      );
      const ok = results.filter((r) => r.status === 200);
      expect(ok).to.have.length(1);
      for (const r of results.filter((x) => x.status !== 200)) expect(r.body.error.code).to.equal('conflict');
      const now = (await call<StrategyAnswer>(daemon, 'GET', '/api/strategies/race', { token: a.token })).body;
      expect(now.version).to.equal(2);
      expect(now.vars).to.deep.equal(ok[0]?.body.vars);
    });
  });

  it('a device flooding i: lines holds one report in its key\'s mailbox, not thousands; a change is not held behind them; its latest values are kept', async () => {
    const c = await device(a, 'flood');
    const path = `/observerio/clients/client-${a.apiKey}`;
    await eventually(() => expect(daemon.runtime.find(path), path).to.not.equal(undefined));
    const N = 3000;
    const lines: string[] = [];
    for (let k = 1; k <= N; k++) {
      const vars = [{ name: 'speed', type: 'integer', value: String(k) }];
      if (k % 100 === 0) vars.push({ name: 'ship', type: 'string', value: `s${k}` });
      lines.push(`i:${a.apiKey}:${b64(vars)}`);
    }
    // One write: the connection actor reads it as a few chunks and hands each line's report on at once.
    c.send(`${lines.join('\n')}\n`);
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, daemon.runtime.find(path)?.mailbox() ?? 0);
        await new Promise((r) => setImmediate(r));
      }
    })();
    await eventually(async () => {
      const d = (await getDevice(a, 'flood')).body;
      expect([varOf(d, 'speed')?.reported, varOf(d, 'ship')?.reported]).to.deep.equal([String(N), `s${N}`]);
    });
    sampling = false;
    await sampler;
    // Before reports joined, each line was a message of its own: the mailbox held about N of them.
    expect(most, 'the most messages the key\'s mailbox held').to.be.at.most(5);
    // A change right after the flood reaches the device (nothing held in front of it).
    const answer = await put(a, 'speed', { value: 99 });
    expect(answer.delivered).to.equal(1);
    await eventually(async () => expect(c.lines.slice(1).map((l) => decodeV(a.apiKey, l).find((v) => v.name === 'speed')?.value)).to.include('99'));
    const d = (await getDevice(a, 'flood')).body;
    expect(varOf(d, 'speed')).to.include({ reported: String(N), override: '99', effective: '99', source: 'override' });
  });

  describe('history', () => {
    it('records who changed what, reverts one entry, and a rollback restores every override', async () => {
      const dev = await device(a, 'h-1');
      const first = await put(a, 'speed', { value: 1 });
      await put(a, 'gravity', { value: 9.5, target: { devices: ['h-1'] } });
      const history = (await call<HistoryAnswer>(daemon, 'GET', '/api/history?limit=10', { token: a.token })).body.entries;
      expect(history).to.have.length(2);
      const mark = history[0]?.id as string;
      expect(history[0]).to.include({ actor: a.email, action: 'override.set', delivered: 1 });
      expect(history[1]?.id).to.equal(first.historyId);
      const before = (await call<OverridesAnswer>(daemon, 'GET', '/api/overrides', { token: a.token })).body.overrides;

      await put(a, 'speed', { value: 5 });
      await call(daemon, 'DELETE', '/api/vars/gravity/override', { token: a.token, body: { target: { devices: ['h-1'] } } });
      await put(a, 'lives', { value: 3, target: { labels: 'tier=gold' } });
      const rb = await call<{ entry: { action: string; rollbackTo: string }; delivered: number }>(daemon, 'POST', '/api/history/rollback', { token: a.token, body: { to: mark } });
      expect(rb.status, JSON.stringify(rb.body)).to.equal(200);
      expect(rb.body.entry).to.include({ action: 'rollback', rollbackTo: mark });
      const after = (await call<OverridesAnswer>(daemon, 'GET', '/api/overrides', { token: a.token })).body.overrides;
      const key = (o: { name: string; value: string; target: unknown }) => JSON.stringify([o.name, o.value, o.target]);
      expect(after.map(key).sort()).to.deep.equal(before.map(key).sort());
      await eventually(async () => {
        const d = (await getDevice(a, 'h-1')).body;
        expect(varOf(d, 'speed')?.effective).to.equal('1');
        expect(varOf(d, 'gravity')?.effective).to.equal('9.5');
        expect(d.pendingCount).to.equal(0);
      });

      const rv = await call<{ entry: { action: string } }>(daemon, 'POST', `/api/history/${first.historyId}/revert`, { token: a.token });
      expect(rv.status, JSON.stringify(rv.body)).to.equal(200);
      expect((await call<OverridesAnswer>(daemon, 'GET', '/api/overrides', { token: a.token })).body.overrides.map((o) => o.name)).to.deep.equal(['gravity']);
      expect(dev.closed).to.equal(false);
      expect((await call(daemon, 'POST', '/api/history/rollback', { token: a.token, body: { to: '1-0' } })).status).to.equal(404);
      expect((await call(daemon, 'GET', '/api/history?limit=0', { token: a.token })).status).to.equal(400);
    });
  });

  describe('isolation', () => {
    it('one account never sees or targets another’s devices, strategies or history (REST, WebSocket)', async () => {
      const mine = await device(a, 'iso-1');
      await put(a, 'x', { value: 1 });
      await call(daemon, 'POST', '/api/strategies', { token: a.token, body: { name: 'secret', vars: [{ name: 'x', value: 2 }] } });
      await lineAt(mine, 1);
      expect((await call<DeviceListAnswer>(daemon, 'GET', '/api/devices', { token: b.token })).body.devices).to.deep.equal([]);
      expect((await getDevice(b, 'iso-1')).status).to.equal(404);
      expect((await call(daemon, 'GET', '/api/strategies/secret', { token: b.token })).status).to.equal(404);
      expect((await call<{ strategies: unknown[] }>(daemon, 'GET', '/api/strategies', { token: b.token })).body.strategies).to.deep.equal([]);
      expect((await call<HistoryAnswer>(daemon, 'GET', '/api/history', { token: b.token })).body.entries).to.deep.equal([]);
      expect((await call<OverridesAnswer>(daemon, 'GET', '/api/overrides', { token: b.token })).body.overrides).to.deep.equal([]);
      const mark = (await call<HistoryAnswer>(daemon, 'GET', '/api/history', { token: a.token })).body.entries[0]?.id as string;
      expect((await call(daemon, 'POST', `/api/history/${mark}/revert`, { token: b.token })).status).to.equal(404);
      expect(await put(b, 'x', { value: 9, target: { devices: ['iso-1'] } })).to.include({ delivered: 0 });
      const live = await WsClient.open(daemon.httpPort, b.token);
      try {
        live.send({ type: 'set_var', name: 'x', value: 8, target: { devices: ['iso-1'] }, id: 1 });
        expect(await live.waitFor((f) => f.type === 'var_delivery' && f.id === 1)).to.include({ delivered: 0 });
      } finally {
        live.close();
      }
      expect(mine.lines).to.have.length(2);
      expect(varOf((await getDevice(a, 'iso-1')).body, 'x')?.effective).to.equal('1');
    });

    it('a WebSocket set_var with a target reaches only that device and the key’s dashboards see overrides and history', async () => {
      const one = await device(a, 'ws-1');
      const two = await device(a, 'ws-2');
      const live = await WsClient.open(daemon.httpPort, a.token);
      try {
        live.send({ type: 'set_var', name: 'gravity', value: 1.5, target: { devices: ['ws-2'] }, id: 7 });
        expect(await live.waitFor((f) => f.type === 'var_delivery' && f.id === 7)).to.include({ delivered: 1, buffered: false });
        expect(decodeV(a.apiKey, await lineAt(two, 1))).to.deep.equal([{ name: 'gravity', type: 'float', value: '1.5' }]);
        await live.waitFor((f) => f.type === 'overrides');
        await live.waitFor((f) => f.type === 'history');
        live.send({ type: 'set_var', name: 'gravity', value: 1, target: { labels: 'a==b' }, id: 8 });
        const err = await live.waitFor((f) => f.type === 'error' && f.id === 8);
        expect(err).to.include({ code: 'bad_request' });
      } finally {
        live.close();
      }
      expect(one.lines).to.have.length(1);
    });
  });
});

describe('two daemons on one Redis: §8', () => {
  let nodeA: Daemon;
  let nodeB: Daemon;
  let user: TestUser;
  const sockets: LineClient[] = [];

  before(async () => {
    [nodeA, nodeB] = await Promise.all([startDaemon({ redis: true }), startDaemon({ redis: true })]);
  });
  after(async () => {
    await Promise.all([nodeA.stop(), nodeB.stop()]);
  });
  beforeEach(async () => {
    user = await signedInUser(nodeA);
  });
  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
  });

  it('a change on node A targets a device on node B, and both nodes list it', async () => {
    const c = await LineClient.open(nodeB.tcpPort);
    sockets.push(c);
    c.line(`v:${user.apiKey}:on-b`);
    expect(await c.next()).to.equal('OK');
    const other = await LineClient.open(nodeB.tcpPort);
    sockets.push(other);
    other.line(`v:${user.apiKey}:also-b`);
    expect(await other.next()).to.equal('OK');
    const r = await call<SetOverrideAnswer>(nodeA, 'PUT', '/api/vars/speed', { token: user.token, body: { value: 4, target: { devices: ['on-b'] } } });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body).to.include({ delivered: 1, pending: 0 });
    expect(decodeV(user.apiKey, await lineAt(c, 1))).to.deep.equal([{ name: 'speed', type: 'integer', value: '4' }]);
    expect(other.lines).to.have.length(1);
    for (const node of [nodeA, nodeB]) {
      const list = (await call<DeviceListAnswer>(node, 'GET', '/api/devices', { token: user.token })).body.devices;
      expect(list.map((d) => d.deviceId).sort()).to.deep.equal(['also-b', 'on-b']);
    }
  });
});
