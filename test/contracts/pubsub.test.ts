/**
 * Runs the PubSub contract against both implementations, plus what only Redis can show: two daemons
 * sharing one Redis, one Redis subscription per channel, and re-subscription after a reconnect.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import { LocalPubSub } from '../../src/pubsub/local-pubsub.js';
import { RedisPubSub } from '../../src/pubsub/redis-pubsub.js';
import { resolvePubSub } from '../../src/pubsub/index.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import { sharedRedis, type RedisServer } from '../helpers/processes.js';
import { capturingLogger, pubsubContract } from './pubsub.contract.js';

pubsubContract('LocalPubSub', (logger) => new LocalPubSub({ logger }));

pubsubContract('RedisPubSub', async (logger) => new RedisPubSub({ url: (await sharedRedis()).url, logger }));

describe('RedisPubSub (Redis only)', () => {
  let redis: RedisServer;
  const opened: RedisPubSub[] = [];
  const open = async (): Promise<RedisPubSub> => {
    const ps = new RedisPubSub({ url: redis.url, logger: capturingLogger().logger });
    opened.push(ps);
    await ps.start();
    return ps;
  };

  before(async () => {
    redis = await sharedRedis();
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((ps) => ps.stop()));
  });

  async function numsub(channel: string): Promise<number> {
    const c = redis.client();
    try {
      const reply = (await c.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
      return Number(reply[1]);
    } finally {
      c.disconnect();
    }
  }

  it('carries a message from one daemon to a subscriber on another, both ways', async () => {
    const nodeA = await open();
    const nodeB = await open();
    const onB: unknown[] = [];
    const onA: unknown[] = [];
    await nodeB.subscribe('CROSSNODE001:logs', (m) => onB.push(m));
    await nodeA.subscribe('CROSSNODE001:vars:callback', (m) => onA.push(m));
    await nodeA.publish('CROSSNODE001:logs', { from: 'A' });
    await nodeB.publish('CROSSNODE001:vars:callback', [{ name: 'speed', type: 'integer', value: '3' }]);
    await eventually(() => {
      expect(onB).to.deep.equal([{ from: 'A' }]);
      expect(onA).to.deep.equal([[{ name: 'speed', type: 'integer', value: '3' }]]);
    });
  });

  it('holds one Redis subscription per channel however many local handlers, and drops it with the last', async () => {
    const ps = await open();
    const ch = 'ONESUBSCRIB1:vars';
    const offs = await Promise.all([1, 2, 3].map(() => ps.subscribe(ch, () => undefined)));
    expect(await numsub(ch)).to.equal(1);
    await offs[0]!();
    await offs[1]!();
    expect(await numsub(ch)).to.equal(1);
    await offs[2]!();
    expect(await numsub(ch)).to.equal(0);
  });

  it('ends subscribed when a subscribe races the last unsubscribe', async () => {
    const ps = await open();
    const ch = 'RACESUBSCRIB:vars';
    const off = await ps.subscribe(ch, () => undefined);
    const got: unknown[] = [];
    const [, off2] = await Promise.all([off(), ps.subscribe(ch, (m) => got.push(m))]);
    expect(await numsub(ch)).to.equal(1);
    await ps.publish(ch, 'still here');
    await eventually(() => expect(got).to.deep.equal(['still here']));
    await off2();
    expect(await numsub(ch)).to.equal(0);
  });

  it('re-subscribes after its subscriber connection is killed (ioredis autoResubscribe)', async () => {
    const ps = await open();
    const ch = 'RECONNECT001:vars';
    const got: unknown[] = [];
    await ps.subscribe(ch, (m) => got.push(m));
    const admin = redis.client();
    try {
      const killed = await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      expect(Number(killed)).to.be.greaterThan(0);
      // Messages during the gap are lost (Redis pub/sub is at-most-once), so keep publishing until
      // one arrives through the re-established subscription.
      let n = 0;
      await eventually(
        async () => {
          await ps.publish(ch, ++n);
          expect(got.length).to.be.greaterThan(0);
        },
        { timeoutMs: 10000, intervalMs: 50 },
      );
      expect(await numsub(ch)).to.equal(1);
    } finally {
      admin.disconnect();
    }
  });

  it('start() fails clearly, and health() says why, when Redis is unreachable', async () => {
    const port = await freePort();
    const ps = new RedisPubSub({ url: `redis://127.0.0.1:${port}` });
    let err: unknown;
    await ps.start().catch((e: unknown) => (err = e));
    expect((err as Error).message).to.match(/pubsub: cannot connect to Redis/);
    const h = await ps.health();
    expect(h.ok).to.equal(false);
    expect(h.detail).to.match(/publisher connection/);
    await ps.stop();
  });
});

describe('resolvePubSub', () => {
  const logger = pino({ level: 'silent' });
  it('is local without a Redis URL', () => {
    expect(resolvePubSub({ redisUrl: null }, logger).kind).to.equal('local');
  });
  it('is Redis with a Redis URL, without connecting until started', () => {
    expect(resolvePubSub({ redisUrl: 'redis://127.0.0.1:1' }, logger).kind).to.equal('redis');
  });
});
