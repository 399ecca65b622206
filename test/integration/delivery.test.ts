/**
 * Variable changes reaching devices, end to end over real sockets: every verified socket of the key
 * gets the `v:` line and no other key's socket does; with no device the change waits in the outbox and
 * arrives right after `OK`, collapsed to the latest value per variable; the outbox survives a daemon
 * restart on Redis; two daemons on one Redis deliver to each other's devices; shutdown ends the node's
 * delivery-ack subscription before pubsub closes.
 */
import { expect } from 'chai';
import { ackChannel } from '../../src/clients/var-changes.js';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { b64, LineClient } from '../helpers/tcp-client.js';
import { WsClient } from '../helpers/ws-client.js';

type Var = { name: string; type: string; value: string };
type PutResult = { var: Var; target: unknown; delivered: number; pending: number; buffered: boolean; historyId?: string; unconfirmed?: number };

const decodeV = (apiKey: string, line: string): Var[] => {
  expect(line.startsWith(`v:${apiKey}:`), line).to.equal(true);
  return JSON.parse(Buffer.from(line.slice(`v:${apiKey}:`.length), 'base64').toString('utf8')) as Var[];
};

/** The device's line number `i` (0 = the OK), waiting for it if it has not arrived yet. */
const lineAt = async (c: LineClient, i: number): Promise<string> => (await c.waitLines(i + 1))[i] as string;

const put = async (daemon: Daemon, u: TestUser, name: string, body: unknown): Promise<PutResult> => {
  const r = await call<PutResult>(daemon, 'PUT', `/api/vars/${encodeURIComponent(name)}`, { token: u.token, body });
  expect(r.status, JSON.stringify(r.body)).to.equal(200);
  // Each answer names its own history entry (DESIGN.md §8); the rest is compared whole.
  const { historyId, ...rest } = r.body;
  expect(historyId).to.be.a('string');
  return rest;
};

for (const mode of ['embedded', 'redis'] as const) {
  describe(`variable changes reach devices (${mode} backends)`, () => {
    let daemon: Daemon;
    let a: TestUser;
    let b: TestUser;
    const devices: LineClient[] = [];

    const device = async (apiKey: string, deviceId?: string) => {
      const c = await LineClient.open(daemon.tcpPort);
      devices.push(c);
      c.line(deviceId ? `v:${apiKey}:${deviceId}` : `v:${apiKey}`);
      expect(await c.next()).to.equal('OK');
      return c;
    };

    before(async () => {
      daemon = await startDaemon({ redis: mode === 'redis' });
    });
    after(async () => {
      await daemon.stop();
    });
    beforeEach(async () => {
      [a, b] = await Promise.all([signedInUser(daemon), signedInUser(daemon)]);
    });
    afterEach(() => {
      for (const d of devices.splice(0)) d.close();
    });

    it('every socket of the key gets the v: line; a socket of another key gets nothing', async () => {
      const one = await device(a.apiKey, 'one');
      const two = await device(a.apiKey, 'two');
      const other = await device(b.apiKey, 'other');
      const r = await put(daemon, a, 'speed', { value: 5 });
      expect(r).to.deep.equal({ var: { name: 'speed', type: 'integer', value: '5' }, target: { all: true }, delivered: 2, pending: 0, buffered: false });
      for (const d of [one, two]) expect(decodeV(a.apiKey, await lineAt(d, 1))).to.deep.equal([{ name: 'speed', type: 'integer', value: '5' }]);
      // B's own change is the next line B's socket sees: A's never reached it.
      expect((await put(daemon, b, 'mine', { value: 'b' })).delivered).to.equal(1);
      expect(decodeV(b.apiKey, await lineAt(other, 1))).to.deep.equal([{ name: 'mine', type: 'string', value: 'b' }]);
      expect(other.lines).to.have.length(2);
    });

    it('buffers changes while no device is connected and delivers them right after OK, one line, latest value per variable', async () => {
      expect(await put(daemon, a, 'speed', { value: 1 })).to.include({ delivered: 0, buffered: true });
      expect(await put(daemon, a, 'speed', { value: 2 })).to.include({ delivered: 0, buffered: true });
      expect(await put(daemon, a, 'name', { value: 'bob' })).to.include({ delivered: 0, buffered: true });
      // Nothing is queued: what a device gets is derived from the overrides in effect for it (DESIGN.md §8).
      expect((await daemon.ctx.clients.variables.listOverrides(a.apiKey)).map((o) => [o.name, o.value])).to.deep.equal([['speed', '2'], ['name', 'bob']]);

      const dev = await LineClient.open(daemon.tcpPort);
      devices.push(dev);
      dev.line(`v:${a.apiKey}:late`);
      const [ok, flushed] = await dev.waitLines(2);
      expect(ok).to.equal('OK');
      expect(decodeV(a.apiKey, flushed as string)).to.deep.equal([
        { name: 'speed', type: 'integer', value: '2' },
        { name: 'name', type: 'string', value: 'bob' },
      ]);
      expect((await daemon.ctx.clients.variables.device(a.apiKey, 'late')).pendingCount).to.equal(0);
      // Nothing else was waiting: the next line is the next live change.
      expect(await put(daemon, a, 'speed', { value: 3 })).to.include({ delivered: 1, buffered: false });
      expect(decodeV(a.apiKey, await lineAt(dev, 2))).to.deep.equal([{ name: 'speed', type: 'integer', value: '3' }]);
      expect(dev.lines).to.have.length(3);
    });

    it('buffers through the key’s client actor after the last device left, and delivers on reconnect', async () => {
      const first = await device(a.apiKey);
      first.close();
      await eventually(() => expect(daemon.ctx.deviceConns.countKey(a.apiKey)).to.equal(0));
      // The client actor is still there (idle grace period): it answers that it buffered the change.
      const r = await put(daemon, a, 'speed', { value: 8 });
      expect(r).to.deep.equal({ var: { name: 'speed', type: 'integer', value: '8' }, target: { all: true }, delivered: 0, pending: 1, buffered: true });
      const again = await LineClient.open(daemon.tcpPort);
      devices.push(again);
      again.line(`v:${a.apiKey}`);
      const [ok, line] = await again.waitLines(2);
      expect(ok).to.equal('OK');
      expect(decodeV(a.apiKey, line as string)).to.deep.equal([{ name: 'speed', type: 'integer', value: '8' }]);
    });

    it('a WebSocket set_var reaches every device of the key', async () => {
      const live = await WsClient.open(daemon.httpPort, a.token);
      try {
        const [one, two] = [await device(a.apiKey), await device(a.apiKey)];
        live.send({ type: 'set_var', name: 'gravity', value: 9.81, id: 1 });
        for (const d of [one, two]) expect(decodeV(a.apiKey, await lineAt(d, 1))).to.deep.equal([{ name: 'gravity', type: 'float', value: '9.81' }]);
        expect(await live.waitFor((f) => f.type === 'var_delivery' && f.id === 1)).to.include({ delivered: 2, buffered: false });
      } finally {
        live.close();
      }
    });
  });
}

describe('the outbox across a daemon restart (real Redis)', () => {
  it('keeps a change buffered on one daemon for a device that connects to the next one', async () => {
    const first = await startDaemon({ redis: true });
    let user: TestUser;
    try {
      user = await signedInUser(first);
      expect(await put(first, user, 'difficulty', { value: 'hard' })).to.include({ delivered: 0, buffered: true });
      expect(await put(first, user, 'lives', { value: 2 })).to.include({ buffered: true });
      expect(await put(first, user, 'lives', { value: 3 })).to.include({ buffered: true });
    } finally {
      await first.stop();
    }
    const second = await startDaemon({ redis: true });
    const dev = await LineClient.open(second.tcpPort);
    try {
      dev.line(`v:${user.apiKey}:after-restart`);
      const [ok, line] = await dev.waitLines(2);
      expect(ok).to.equal('OK');
      expect(decodeV(user.apiKey, line as string)).to.deep.equal([
        { name: 'difficulty', type: 'string', value: 'hard' },
        { name: 'lives', type: 'integer', value: '3' },
      ]);
      // The session outlived the restart too; the changes are overrides (DESIGN.md §8).
      const vars = await call<{ overrides: Var[] }>(second, 'GET', '/api/overrides', { token: user.token });
      expect(vars.body.overrides.map(({ name, type, value }) => ({ name, type, value }))).to.deep.equal([
        { name: 'difficulty', type: 'string', value: 'hard' },
        { name: 'lives', type: 'integer', value: '3' },
      ]);
    } finally {
      dev.close();
      await second.stop();
    }
  });
});

describe('two daemons on one Redis', () => {
  let nodeA: Daemon;
  let nodeB: Daemon;
  let user: TestUser;
  const devices: LineClient[] = [];

  const device = async (d: Daemon, deviceId: string) => {
    const c = await LineClient.open(d.tcpPort);
    devices.push(c);
    c.line(`v:${user.apiKey}:${deviceId}`);
    expect(await c.next()).to.equal('OK');
    return c;
  };

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
    for (const d of devices.splice(0)) d.close();
  });

  it('a change made on one node reaches a device on the other, with the count from both nodes', async () => {
    const onB = await device(nodeB, 'on-b');
    expect(await put(nodeA, user, 'speed', { value: 4 })).to.deep.equal({ var: { name: 'speed', type: 'integer', value: '4' }, target: { all: true }, delivered: 1, pending: 0, buffered: false });
    expect(decodeV(user.apiKey, await lineAt(onB, 1))).to.deep.equal([{ name: 'speed', type: 'integer', value: '4' }]);
    const onA = await device(nodeA, 'on-a');
    // Right after OK a device gets every override in effect (DESIGN.md §8), then the next change.
    expect(decodeV(user.apiKey, await lineAt(onA, 1))).to.deep.equal([{ name: 'speed', type: 'integer', value: '4' }]);
    expect(await put(nodeB, user, 'speed', { value: 5 })).to.include({ delivered: 2, buffered: false });
    expect(decodeV(user.apiKey, await lineAt(onA, 2))).to.deep.equal([{ name: 'speed', type: 'integer', value: '5' }]);
    expect(decodeV(user.apiKey, await lineAt(onB, 2))).to.deep.equal([{ name: 'speed', type: 'integer', value: '5' }]);
  });

  it('a dashboard on one node sees the events of a device on the other', async () => {
    const live = await WsClient.open(nodeA.httpPort, user.token);
    try {
      const onB = await device(nodeB, 'far');
      await live.waitFor((f) => f.type === 'device' && f.event === 'connected');
      onB.line(`i:${user.apiKey}:${b64([{ name: 'hp', type: 'integer', value: '10' }])}`);
      expect(await live.waitFor((f) => f.type === 'vars' && f.deviceId === 'far')).to.have.property('vars').that.deep.equals([{ name: 'hp', type: 'integer', value: '10' }]);
      live.send({ type: 'set_var', name: 'hp', value: 11, id: 'x' });
      expect(decodeV(user.apiKey, await lineAt(onB, 1))).to.deep.equal([{ name: 'hp', type: 'integer', value: '11' }]);
      expect(await live.waitFor((f) => f.type === 'var_delivery' && f.id === 'x')).to.include({ delivered: 1 });
    } finally {
      live.close();
    }
  });
});

for (const mode of ['embedded', 'redis'] as const) {
  describe(`shutdown ends the delivery-ack subscription (${mode} backends)`, () => {
    it('nobody listens on the node’s ack channel by the time pubsub stops', async () => {
      const daemon = await startDaemon({ redis: mode === 'redis' });
      const u = await signedInUser(daemon);
      // A change with no device: the change service has subscribed and waited on its ack channel.
      expect(await put(daemon, u, 'speed', { value: 1 })).to.include({ buffered: true });
      const { pubsub } = daemon.ctx;
      const channel = ackChannel(daemon.nodeId);
      // A foreign request id: the service ignores it, and publish says whether anyone listened.
      const probe = () => pubsub.publish(channel, { requestId: 'shutdown-probe', delivered: 0 });
      expect(await probe()).to.equal(1);
      let listenersAtStop = -1;
      const stop = pubsub.stop.bind(pubsub);
      pubsub.stop = async () => {
        listenersAtStop = await probe();
        return stop();
      };
      await daemon.stop();
      expect(listenersAtStop).to.equal(0);
    });
  });
}
