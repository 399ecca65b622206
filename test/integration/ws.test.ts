/**
 * The live channel GET /ws on real Redis (pubsub between the daemon's parts goes through Redis):
 * authentication at upgrade, the events a raw TCP device causes, set_var reaching the device, frame
 * validation, payload and backpressure limits, tenant isolation, reference-counted subscriptions,
 * and sockets closed at sign-out, session expiry and shutdown.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { sharedRedis } from '../helpers/processes.js';
import { b64, LineClient } from '../helpers/tcp-client.js';
import { WsClient, type Frame } from '../helpers/ws-client.js';

const decodeV = (line: string): unknown => JSON.parse(Buffer.from(line.split(':')[2] ?? '', 'base64').toString('utf8'));

describe('WebSocket /ws (real Redis)', () => {
  let daemon: Daemon;
  let redis: Redis;
  let a: TestUser;
  let b: TestUser;
  const sockets: WsClient[] = [];
  const devices: LineClient[] = [];

  const ws = async (u: TestUser) => {
    const c = await WsClient.open(daemon.httpPort, u.token);
    sockets.push(c);
    return c;
  };
  const device = async (apiKey: string, deviceId?: string) => {
    const c = await LineClient.open(daemon.tcpPort);
    devices.push(c);
    c.line(deviceId ? `v:${apiKey}:${deviceId}` : `v:${apiKey}`);
    expect(await c.next()).to.equal('OK');
    return c;
  };
  const wsClients = async () => (await daemon.ctx.metrics.wsClients.get()).values[0]?.value ?? 0;

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
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.close();
    for (const d of devices.splice(0)) d.close();
    await eventually(async () => expect(await wsClients()).to.equal(0));
  });

  describe('upgrade', () => {
    const url = (query: string) => `ws://127.0.0.1:${daemon.httpPort}/ws${query}`;

    it('refuses with 401 before upgrading when the token is missing, unknown, malformed or expired', async () => {
      const u = await daemon.ctx.store.authenticate(a.email, a.password);
      const expired = (await daemon.ctx.store.createSession(u!, 1)).token;
      await eventually(async () => expect(await daemon.ctx.store.getSession(expired)).to.equal(null));
      for (const query of ['', '?token=', `?token=${randomBytes(32).toString('base64url')}`, '?token=%00%01', `?token=${expired}`]) {
        const r = await WsClient.refusal(url(query));
        expect(r.status, query).to.equal(401);
        expect(JSON.parse(r.body)).to.have.nested.property('error.code', 'unauthorized');
      }
      expect(await wsClients()).to.equal(0);
    });

    it('accepts the token as a bearer.<token> subprotocol and echoes only the observerio protocol', async () => {
      const c = await WsClient.open(daemon.httpPort, a.token, { query: false, protocols: ['observerio', `bearer.${a.token}`] });
      sockets.push(c);
      expect(c.ws.protocol).to.equal('observerio');
      expect(await c.waitFor((f) => f.type === 'ready')).to.deep.equal({ type: 'ready', apiKey: a.apiKey, email: a.email });
      const refused = await WsClient.refusal(url(''), ['observerio', `bearer.${randomBytes(32).toString('base64url')}`]);
      expect(refused.status).to.equal(401);
    });

    it('upgrades a session this node created at sign-in without reading the store (synchronously)', async () => {
      const fresh = await signedInUser(daemon);
      const store = daemon.ctx.store;
      const getSession = store.getSession.bind(store);
      let reads = 0;
      store.getSession = async () => {
        reads += 1;
        throw new Error('the store is down');
      };
      try {
        const c = await ws(fresh);
        expect(await c.waitFor((f) => f.type === 'ready')).to.deep.equal({ type: 'ready', apiKey: fresh.apiKey, email: fresh.email });
      } finally {
        store.getSession = getSession;
      }
      expect(reads).to.equal(0);
    });

    it('upgrades after reading the store a session this node does not hold', async () => {
      const u = await daemon.ctx.store.authenticate(a.email, a.password);
      const token = (await daemon.ctx.store.createSession(u!, 60_000)).token;
      expect(daemon.ctx.sessionRevocations.sessions.get(token, Date.now())).to.equal(null);
      const c = await WsClient.open(daemon.httpPort, token);
      sockets.push(c);
      expect(await c.waitFor((f) => f.type === 'ready')).to.deep.equal({ type: 'ready', apiKey: a.apiKey, email: a.email });
      expect(daemon.ctx.sessionRevocations.sessions.get(token, Date.now())).to.not.equal(null);
    });

    it('opens 300 sockets one after another, each of them ready and still open (none closed at open)', async () => {
      // uWebSockets.js can close a socket it upgraded asynchronously (after a store read of the
      // session) right after open (uNetworking/uWebSockets PR #1929), code 1006. A signed-in token is
      // held in memory, so these opens take the synchronous upgrade but for a read each second.
      const closed: number[] = [];
      for (let i = 0; i < 300; i++) {
        const c = await WsClient.open(daemon.httpPort, a.token).catch((err: unknown) => {
          closed.push(i);
          return err;
        });
        if (c instanceof WsClient) {
          if (c.closeCode !== null) closed.push(i);
          c.close();
        }
      }
      expect(closed).to.deep.equal([]);
    });

    it('counts open sockets in the metrics', async () => {
      await ws(a);
      await ws(a);
      await ws(b);
      expect(await wsClients()).to.equal(3);
    });
  });

  describe('events from devices', () => {
    it('sends device connected, vars, logs and device disconnected for a raw TCP device', async () => {
      const live = await ws(a);
      const dev = await device(a.apiKey, 'phone-1');
      const connected = await live.waitFor((f) => f.type === 'device' && f.event === 'connected');
      expect(connected.device).to.include({ apiKey: a.apiKey, deviceId: 'phone-1' });

      dev.line(`i:${a.apiKey}:${b64([{ name: 'speed', type: 'integer', value: '7' }])}`);
      const vars = await live.waitFor((f) => f.type === 'vars' && f.deviceId === 'phone-1');
      expect(vars).to.deep.equal({ type: 'vars', apiKey: a.apiKey, deviceId: 'phone-1', vars: [{ name: 'speed', type: 'integer', value: '7' }] });

      dev.line(`l:${a.apiKey}:${b64([{ message: 'boss spawned', level: 'warn', timestamp: 5 }])}`);
      const logs = await live.waitFor((f) => f.type === 'logs');
      expect(logs).to.include({ apiKey: a.apiKey, deviceId: 'phone-1' });
      expect((logs.logs as Frame[])[0]).to.include({ message: 'boss spawned', level: 'warn', timestamp: 5, apiKey: a.apiKey });

      dev.close();
      const gone = await live.waitFor((f) => f.type === 'device' && f.event === 'disconnected');
      expect((gone.device as Frame).id).to.equal((connected.device as Frame).id);
    });

    it('fans one event out to every socket of the key', async () => {
      const [one, two] = [await ws(a), await ws(a)];
      const dev = await device(a.apiKey);
      dev.line(`i:${a.apiKey}:${b64([{ name: 'x', type: 'string', value: 'y' }])}`);
      for (const c of [one, two]) await c.waitFor((f) => f.type === 'vars' && f.deviceId === null);
      expect(one.ofType('vars')).to.have.length(1);
      expect(two.ofType('vars')).to.have.length(1);
    });
  });

  describe('set_var', () => {
    it('reaches the device as a v: line and is answered with var_delivery (id echoed)', async () => {
      const live = await ws(a);
      const dev = await device(a.apiKey, 'phone-1');
      live.send({ type: 'set_var', name: 'speed', value: 9, id: 'req-1' });
      const line = await dev.next();
      expect(line.startsWith(`v:${a.apiKey}:`)).to.equal(true);
      expect(decodeV(line)).to.deep.equal([{ name: 'speed', type: 'integer', value: '9' }]);
      const answer = await live.waitFor((f) => f.type === 'var_delivery' && f.id === 'req-1');
      const { historyId, ...rest } = answer as { historyId?: unknown };
      expect(rest).to.deep.equal({ type: 'var_delivery', id: 'req-1', name: 'speed', var: { name: 'speed', type: 'integer', value: '9' }, target: { all: true }, delivered: 1, pending: 0, buffered: false });
      expect(historyId).to.be.a('string');
      // Other dashboards learn the new value too; it is an override (DESIGN.md §8), not a reported value.
      await live.waitFor((f) => f.type === 'vars' && f.deviceId === null);
      const stored = await call<{ overrides: Array<{ name: string; type: string; value: string }> }>(daemon, 'GET', '/api/overrides', { token: a.token });
      expect(stored.body.overrides.map(({ name, type, value }) => ({ name, type, value }))).to.deep.equal([{ name: 'speed', type: 'integer', value: '9' }]);
    });

    it('honours varType and reports a buffered change when no device is connected', async () => {
      const live = await ws(a);
      live.send({ type: 'set_var', name: 'mode', value: 'hard', varType: 'difficulty', id: 7 });
      const answer = await live.waitFor((f) => f.type === 'var_delivery' && f.id === 7);
      expect(answer).to.include({ delivered: 0, buffered: true });
      expect(answer.var).to.deep.equal({ name: 'mode', type: 'difficulty', value: 'hard' });
    });

    const bad: Array<[string, unknown, string, RegExp]> = [
      ['malformed JSON', '{"type": "set_var",', 'bad_json', /not valid JSON/],
      ['a JSON array', '[1,2]', 'bad_request', /JSON object/],
      ['a JSON number', '42', 'bad_request', /JSON object/],
      ['an unknown type', { type: 'drop_tables' }, 'bad_request', /unknown frame type/],
      ['a missing value', { type: 'set_var', name: 'x' }, 'bad_request', /value/],
      ['an object value', { type: 'set_var', name: 'x', value: { a: 1 } }, 'bad_request', /value/],
      ['an unknown field', { type: 'set_var', name: 'x', value: 1, apiKey: 'AAAAAAAAAAAA' }, 'bad_request', /apiKey/],
      ['a control character in the name', { type: 'set_var', name: 'x\u0001', value: 1 }, 'bad_request', /control/],
      ['a too long name', { type: 'set_var', name: 'n'.repeat(129), value: 1 }, 'bad_request', /1-128/],
      ['a value that is not of the type', { type: 'set_var', name: 'x', value: 'abc', varType: 'integer' }, 'bad_request', /not a number/],
    ];
    for (const [what, frame, code, message] of bad) {
      it(`answers an error frame for ${what} and stays open`, async () => {
        const live = await ws(a);
        live.send(frame);
        const err = await live.waitFor((f) => f.type === 'error');
        expect(err.code).to.equal(code);
        expect(err.message).to.match(message);
        live.send({ type: 'set_var', name: 'after', value: 1, id: 'after' });
        await live.waitFor((f) => f.type === 'var_delivery' && f.id === 'after');
        expect(await redis.hget(`${a.apiKey}:vs`, 'x:value')).to.equal(null);
      });
    }

    it('applies a burst of set_var frames in the order sent', async () => {
      const live = await ws(a);
      const dev = await device(a.apiKey);
      for (let i = 1; i <= 20; i++) live.send(i % 2 ? { type: 'set_var', name: 'n', value: i } : { type: 'set_var', name: 'n', value: String(i), varType: 'integer' });
      const lines = await dev.waitLines(21);
      expect(lines.slice(1).map((l) => (decodeV(l) as Array<{ value: string }>)[0]?.value)).to.deep.equal(Array.from({ length: 20 }, (_, i) => String(i + 1)));
      const o = await call<{ overrides: Array<{ name: string; value: string }> }>(daemon, 'GET', '/api/overrides', { token: a.token });
      expect(o.body.overrides.map((x) => [x.name, x.value])).to.deep.equal([['n', '20']]);
    });

    it('pipelines a socket’s set_var frames for different variables: all are in flight at once, answered in order with their ids', async () => {
      const live = await ws(a);
      const dev = await device(a.apiKey);
      // A node that never acks: each change's answer waits out the ack timeout (1 s) while its line is
      // already on the device. One frame at a time, the second change would start only after the
      // first answer; pipelined, all ten reach the device before any answer.
      const silent = redis.duplicate();
      await silent.subscribe(`${a.apiKey}:vars:callback`);
      try {
        for (let i = 0; i < 10; i++) live.send({ type: 'set_var', name: `p${i}`, value: i, id: `f${i}` });
        const values = new Map<string, string>();
        while (values.size < 10) for (const v of decodeV(await dev.next(5000)) as Array<{ name: string; value: string }>) values.set(v.name, v.value);
        const answers = () => live.frames.filter((f) => f.type === 'var_delivery' && 'var' in f);
        expect(answers()).to.have.length(0);
        await eventually(() => expect(answers()).to.have.length(10), { timeoutMs: 10_000 });
        expect(answers().map((f) => [f.id, f.name, f.unconfirmed])).to.deep.equal(Array.from({ length: 10 }, (_, i) => [`f${i}`, `p${i}`, 1]));
        expect([...values].sort()).to.deep.equal(Array.from({ length: 10 }, (_, i) => [`p${i}`, String(i)]));
        // In the order sent: the history lists them so, newest first.
        const h = await call<{ entries: Array<{ changes: Array<{ name: string }> }> }>(daemon, 'GET', '/api/history?limit=10', { token: a.token });
        expect(h.body.entries.map((e) => e.changes[0]?.name)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `p${9 - i}`));
      } finally {
        silent.disconnect();
      }
    });

    it('tells a socket flooding set_var frames to slow down, and keeps serving it', async () => {
      const live = await ws(a);
      for (let i = 0; i < 500; i++) live.send({ type: 'set_var', name: 'flood', value: i });
      const err = await live.waitFor((f) => f.type === 'error');
      expect(err.code).to.equal('too_many_requests');
      // Every frame is answered: a delivery report (with `var`, unlike the broadcast events) or the error.
      const answers = () => live.frames.filter((f) => (f.type === 'var_delivery' && 'var' in f) || f.type === 'error').length;
      await eventually(() => expect(answers()).to.equal(500), { timeoutMs: 15_000 });
      live.send({ type: 'set_var', name: 'flood', value: 'last', varType: 'string', id: 'last' });
      await live.waitFor((f) => f.type === 'var_delivery' && f.id === 'last');
    });

    it('answers an error frame for a binary frame', async () => {
      const live = await ws(a);
      live.ws.send(Buffer.from(JSON.stringify({ type: 'set_var', name: 'x', value: 1 })), { binary: true });
      expect((await live.waitFor((f) => f.type === 'error')).message).to.match(/text/);
    });

    it('closes the socket on a frame over the payload limit', async () => {
      const live = await ws(a);
      live.send({ type: 'set_var', name: 'big', value: 'x'.repeat(daemon.config.http.wsMaxPayloadBytes + 1) });
      const code = await live.waitClosed();
      expect([1006, 1009]).to.include(code);
      expect(await redis.hget(`${a.apiKey}:vs`, 'big:value')).to.equal(null);
    });
  });

  describe('tenant isolation', () => {
    it('a user receives none of another user’s events and cannot reach their devices', async () => {
      const liveA = await ws(a);
      const liveB = await ws(b);
      const devA = await device(a.apiKey, 'a-phone');
      devA.line(`i:${a.apiKey}:${b64([{ name: 'speed', type: 'integer', value: '1' }])}`);
      devA.line(`l:${a.apiKey}:${b64([{ message: 'a secret log' }])}`);
      await liveA.waitFor((f) => f.type === 'vars' && f.deviceId === 'a-phone');
      await liveA.waitFor((f) => f.type === 'logs');

      // B steers "speed" on its own key: A's device must not get it, A's variable must not change.
      liveB.send({ type: 'set_var', name: 'speed', value: 99, id: 'b' });
      expect(await liveB.waitFor((f) => f.type === 'var_delivery' && f.id === 'b')).to.include({ delivered: 0, buffered: true });
      // A change of A's own comes next on A's device: had B's reached it, it would be the first.
      liveA.send({ type: 'set_var', name: 'speed', value: 2, id: 'a' });
      expect(decodeV(await devA.next())).to.deep.equal([{ name: 'speed', type: 'integer', value: '2' }]);
      await liveA.waitFor((f) => f.type === 'var_delivery' && f.id === 'a');
      devA.close();
      await liveA.waitFor((f) => f.type === 'device' && f.event === 'disconnected');

      const seenByB = liveB.frames.map((f) => f.type);
      expect(JSON.stringify(liveB.frames)).to.not.include(a.apiKey);
      expect(JSON.stringify(liveB.frames)).to.not.include('a secret log');
      expect(seenByB).to.not.include('device');
      expect(seenByB).to.not.include('logs');
      // <apiKey>:vs is what A's device reported; each key's dashboard change is that key's override only.
      expect(await redis.hget(`${a.apiKey}:vs`, 'speed:value')).to.equal('1');
      const overrides = async (u: TestUser) => (await call<{ overrides: Array<{ name: string; value: string }> }>(daemon, 'GET', '/api/overrides', { token: u.token })).body.overrides.map((x) => [x.name, x.value]);
      expect(await overrides(a)).to.deep.equal([['speed', '2']]);
      expect(await overrides(b)).to.deep.equal([['speed', '99']]);
    });
  });

  describe('subscriptions', () => {
    it('subscribes the node to a key’s channels once while its sockets are open, and unsubscribes after the last', async () => {
      const numsub = async () => {
        const r = (await redis.pubsub('NUMSUB', `${a.apiKey}:vars`, `${a.apiKey}:logs`, `${a.apiKey}:devices`)) as Array<string | number>;
        return [Number(r[1]), Number(r[3]), Number(r[5])];
      };
      expect(await numsub()).to.deep.equal([0, 0, 0]);
      const one = await ws(a);
      const two = await ws(a);
      expect(await numsub()).to.deep.equal([1, 1, 1]);
      one.close();
      await one.waitClosed();
      expect(await numsub()).to.deep.equal([1, 1, 1]);
      // Still live for the remaining socket.
      const dev = await device(a.apiKey);
      dev.line(`i:${a.apiKey}:${b64([{ name: 'k', type: 'string', value: 'v' }])}`);
      await two.waitFor((f) => f.type === 'vars');
      two.close();
      await eventually(async () => expect(await numsub()).to.deep.equal([0, 0, 0]));
      // A reopen right after resubscribes, and delivers each event once.
      const three = await ws(a);
      dev.line(`i:${a.apiKey}:${b64([{ name: 'k', type: 'string', value: 'w' }])}`);
      await three.waitFor((f) => f.type === 'vars');
      dev.line(`l:${a.apiKey}:${b64([{ message: 'marker' }])}`);
      await three.waitFor((f) => f.type === 'logs');
      expect(three.ofType('vars')).to.have.length(1);
    });
  });

  describe('closing', () => {
    it('closes a socket with 4401 when its session expires', async () => {
      const u = await daemon.ctx.store.authenticate(a.email, a.password);
      const short = await daemon.ctx.store.createSession(u!, 1500);
      const live = await ws({ ...a, token: short.token });
      expect(await live.waitClosed(4000)).to.equal(4401);
    });

    it('closes sockets with 1001 when the daemon shuts down', async () => {
      const other = await startDaemon({ redis: true });
      try {
        const u = await signedInUser(other);
        const live = await WsClient.open(other.httpPort, u.token);
        await other.stop();
        expect(await live.waitClosed()).to.equal(1001);
      } finally {
        await other.stop();
      }
    });

    it('closes a dashboard that stops reading once it is past the backpressure limit', async () => {
      const small = await startDaemon({ redis: true, overrides: { http: { wsMaxBackpressureBytes: 64 * 1024 } } });
      const dev = await LineClient.open(small.tcpPort);
      try {
        const u = await signedInUser(small);
        const live = await WsClient.open(small.httpPort, u.token);
        const slow = await WsClient.open(small.httpPort, u.token);
        // The slow one stops reading from its socket; the kernel buffers fill, then uWS's.
        (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
        dev.line(`v:${u.apiKey}`);
        expect(await dev.next()).to.equal('OK');
        const message = 'm'.repeat(30_000);
        const open = async () => (await small.ctx.metrics.wsClients.get()).values[0]?.value ?? 0;
        // Until the daemon drops the slow socket: the live one keeps up throughout.
        for (let i = 0; i < 2000 && (await open()) === 2; i++) {
          dev.line(`l:${u.apiKey}:${b64([{ message: `${i} ${message}` }])}`);
          if (i % 10 === 9) await live.waitFor((f) => f.type === 'logs' && (f.logs as Frame[]).some((l) => String(l.message).startsWith(`${i} `)));
        }
        expect(await open()).to.equal(1);
        (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
        await slow.waitClosed();
        expect(live.closeCode).to.equal(null);
        live.close();
      } finally {
        dev.close();
        await small.stop();
      }
    });
  });
});
