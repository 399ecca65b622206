/**
 * The live tail costs only when watched (gateway/log-tail.ts): a key's logs stop being published once
 * no node listens on `<key>:logs`, and a dashboard that opens the tail gets every log sent after its
 * `ready` frame, on two daemons sharing one real Redis (the tail on B, the device on A) and on an
 * embedded daemon (local pubsub).
 */
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { sharedRedis } from '../helpers/processes.js';
import { b64, LineClient } from '../helpers/tcp-client.js';
import { WsClient, type Frame } from '../helpers/ws-client.js';
import { LOG_WATCH_CHANNEL } from '../../src/gateway/log-tail.js';

const logsPublished = async (d: Daemon): Promise<number> => (await d.ctx.metrics.messagesPublished.get()).values.find((v) => v.labels.kind === 'logs')?.value ?? 0;
const messagesOf = (ws: WsClient): string[] => ws.ofType('logs').flatMap((f) => (f.logs as Frame[]).map((l) => String(l.message)));

describe('live tail only while watched', () => {
  const sockets: WsClient[] = [];
  const devices: LineClient[] = [];
  const device = async (d: Daemon, apiKey: string, deviceId: string) => {
    const c = await LineClient.open(d.tcpPort);
    devices.push(c);
    c.line(`v:${apiKey}:${deviceId}`);
    expect(await c.next()).to.equal('OK');
    return c;
  };
  const tail = async (d: Daemon, u: TestUser) => {
    const c = await WsClient.open(d.httpPort, u.token);
    sockets.push(c);
    return c;
  };
  /** Sends one log and waits until the node's gateway has handled it (published or muted). */
  const logLine = (dev: LineClient, apiKey: string, message: string) => dev.line(`l:${apiKey}:${b64([{ message }])}`);
  const mutedOn = (d: Daemon, apiKey: string) => d.ctx.gateway.tail?.wanted(apiKey) === false;

  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
    for (const d of devices.splice(0)) d.close();
  });

  describe('two daemons on one Redis', () => {
    let nodeA: Daemon;
    let nodeB: Daemon;
    let redis: Redis;

    before(async () => {
      [nodeA, nodeB] = await Promise.all([startDaemon({ redis: true }), startDaemon({ redis: true })]);
      redis = (await sharedRedis()).client();
      await eventually(() => expect(nodeA.ctx.gateway.tail?.isListening && nodeB.ctx.gateway.tail?.isListening).to.equal(true));
    });
    after(async () => {
      redis.disconnect();
      await Promise.all([nodeA.stop(), nodeB.stop()]);
    });

    it('stops publishing a key’s logs nobody watches; they are still indexed', async () => {
      const u = await signedInUser(nodeA);
      const dev = await device(nodeA, u.apiKey, 'phone');
      logLine(dev, u.apiKey, 'unwatched 0');
      await eventually(() => expect(mutedOn(nodeA, u.apiKey)).to.equal(true));
      const before = await logsPublished(nodeA);
      for (let i = 1; i <= 20; i++) logLine(dev, u.apiKey, `unwatched ${i}`);
      await eventually(async () => expect((await nodeA.ctx.logIndex.search({ apiKey: u.apiKey, q: 'unwatched', limit: 100 })).total).to.equal(21));
      expect(await logsPublished(nodeA)).to.equal(before);
    });

    it('a tail opened on B for a device on A gets the first logs sent after ready, in order', async () => {
      const u = await signedInUser(nodeA);
      const dev = await device(nodeA, u.apiKey, 'phone');
      logLine(dev, u.apiKey, 'before anyone watched');
      await eventually(() => expect(mutedOn(nodeA, u.apiKey)).to.equal(true));
      const live = await tail(nodeB, u);
      // Sent the moment `ready` came: A must publish them although it had muted the key.
      const sent = Array.from({ length: 5 }, (_, i) => `after ready ${i}`);
      for (const m of sent) logLine(dev, u.apiKey, m);
      await eventually(() => expect(messagesOf(live)).to.deep.equal(sent), { timeoutMs: 5000 });
      expect(mutedOn(nodeA, u.apiKey)).to.equal(false);
    });

    it('mutes the key again on A once the last tail on B closes, and a reopened tail gets its lines', async () => {
      const u = await signedInUser(nodeA);
      const dev = await device(nodeA, u.apiKey, 'phone');
      const live = await tail(nodeB, u);
      logLine(dev, u.apiKey, 'watched');
      await live.waitFor((f) => f.type === 'logs');
      live.close();
      await live.waitClosed();
      await eventually(
        async () => {
          logLine(dev, u.apiKey, 'closed');
          await new Promise((r) => setTimeout(r, 50));
          expect(mutedOn(nodeA, u.apiKey)).to.equal(true);
        },
        { timeoutMs: 5000 },
      );
      const again = await tail(nodeB, u);
      logLine(dev, u.apiKey, 'reopened');
      await eventually(() => expect(messagesOf(again)).to.deep.equal(['reopened']), { timeoutMs: 5000 });
    });

    it('a tail on A keeps B’s devices’ logs flowing while a tail on B closes', async () => {
      const u = await signedInUser(nodeA);
      const devB = await device(nodeB, u.apiKey, 'tablet');
      const onA = await tail(nodeA, u);
      const onB = await tail(nodeB, u);
      logLine(devB, u.apiKey, 'both');
      await onA.waitFor((f) => f.type === 'logs');
      await onB.waitFor((f) => f.type === 'logs');
      onB.close();
      await onB.waitClosed();
      for (let i = 0; i < 5; i++) logLine(devB, u.apiKey, `only A ${i}`);
      await eventually(() => expect(messagesOf(onA)).to.deep.equal(['both', ...Array.from({ length: 5 }, (_, i) => `only A ${i}`)]), { timeoutMs: 5000 });
      expect(mutedOn(nodeB, u.apiKey)).to.equal(false);
    });

    it('ignores hostile messages on the watch channel', async () => {
      const u = await signedInUser(nodeA);
      const dev = await device(nodeA, u.apiKey, 'phone');
      logLine(dev, u.apiKey, 'x');
      await eventually(() => expect(mutedOn(nodeA, u.apiKey)).to.equal(true));
      for (const m of ['not json', '[]', '{"type":"watch"}', JSON.stringify({ type: 'watch', apiKey: 'k'.repeat(100_000), id: 'i' }), '{"type":"ack","id":7}']) await redis.publish(LOG_WATCH_CHANNEL, m);
      // An unknown sender's well-formed watch only makes A publish again (cost, never a leak: the channel is the key's).
      const live = await tail(nodeB, u);
      logLine(dev, u.apiKey, 'still works');
      await eventually(() => expect(messagesOf(live)).to.deep.equal(['still works']), { timeoutMs: 5000 });
    });
  });

  describe('an embedded daemon (local pubsub)', () => {
    let daemon: Daemon;
    before(async () => {
      daemon = await startDaemon();
      await eventually(() => expect(daemon.ctx.gateway.tail?.isListening).to.equal(true));
    });
    after(async () => {
      await daemon.stop();
    });

    it('mutes a key nobody watches and a tail opened later gets the first log after ready', async () => {
      const u = await signedInUser(daemon);
      const dev = await device(daemon, u.apiKey, 'phone');
      logLine(dev, u.apiKey, 'alone');
      await eventually(() => expect(mutedOn(daemon, u.apiKey)).to.equal(true));
      const before = await logsPublished(daemon);
      logLine(dev, u.apiKey, 'alone again');
      await eventually(async () => expect((await daemon.ctx.logIndex.search({ apiKey: u.apiKey, q: 'alone', limit: 10 })).total).to.equal(2));
      expect(await logsPublished(daemon)).to.equal(before);
      const live = await tail(daemon, u);
      logLine(dev, u.apiKey, 'first');
      logLine(dev, u.apiKey, 'second');
      await eventually(() => expect(messagesOf(live)).to.deep.equal(['first', 'second']));
    });
  });
});
